from litplate.callbacks.training_plan import TrainingPlanPrinter

__all__ = ["TrainingPlanPrinter"]
