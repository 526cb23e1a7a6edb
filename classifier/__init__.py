"""Not Hotdog's image classifier: intake, a LiteRT inference engine, and the
training / evaluation / export tools that produce the models it serves.

Serving imports only `intake`, `card` and `engine` (no TensorFlow); `train`
and `export` need the development requirements.
"""
