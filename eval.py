"""Root entry point: ``python eval.py ckpt_path=PATH`` (same as ``python -m litplate.eval``)."""

from litplate.eval import main

if __name__ == "__main__":
    main()
