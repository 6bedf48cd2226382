"""colorize-gan: colorizing grayscale photos and films with a conditional GAN (Nazeri, Ng and Ebrahimi 2018).

The library under the scripts: colour maths (color), the networks (models), data (dataset, images, hints), run
state and checkpoints (runstate, checkpoint), the device and its precision (device), metrics and evaluation loops,
the photo and video pipelines (photo, video) and their outputs' names (naming), plots, ONNX export and the
torch-free path (onnx_export, light), where the shipped files are (assets) and the console commands of a pip install
(commands). Importing the package imports nothing else, so `python3 -m colorize_gan.light` stays free of PyTorch.
"""
__version__ = '0.9.0'  # the package's version (pyproject.toml reads it from here)
