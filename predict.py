"""Root entry point: ``python predict.py ckpt_path=PATH`` (same as ``python -m litplate.predict``)."""

from litplate.predict import main

if __name__ == "__main__":
    main()
