"""The Lambda ``python3.13`` base image, built on this machine (no registry is reachable here).

``build.ensure_image(engine)`` makes ``public.ecr.aws/lambda/python:3.13-x86_64`` exist in the
project's podman, built from the recipe in this folder (``build.py``, ``bootstrap``,
``runtime.lock``) and rebuilt only when the recipe changes. How it differs from AWS's image:
docs/local-development.md.
"""
