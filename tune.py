"""Root entry point: ``python tune.py +experiment=NAME`` (same as ``python -m litplate.tune``)."""

from litplate.tune import main

if __name__ == "__main__":
    main()
