"""The training pipeline: labelled folders in, a served model directory out.

`dataset` finds and reads photos, `bases` describes the ImageNet networks a model
can start from, `train` transfer-learns and writes `models/NAME/`, `export` turns
Keras into LiteRT files and `evaluate` measures a model directory the way the
server runs it. This package needs TensorFlow (requirements-dev.txt); the serving
package `classifier` never imports it.
"""
