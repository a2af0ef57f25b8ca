"""litplate: a PyTorch Lightning + Hydra project starter whose training mechanics are tested."""
