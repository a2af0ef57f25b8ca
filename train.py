"""Root entry point: ``python train.py +experiment=NAME`` (same as ``python -m litplate.train``)."""

from litplate.train import main

if __name__ == "__main__":
    main()
