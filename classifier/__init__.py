"""Not Hotdog's image classifier, as served: no TensorFlow, only LiteRT and NumPy.

A photo's way through it: `intake` (untrusted bytes to pixels, within the budget of
`decode_cost`), `model` (a network or a dense head, whose file `variants` chose and
`litert` runs), `service.classify` (every model asked, one decode, each network
once, "not sure" and `explain`'s heat maps). `registry` loads the models folder;
`batch` classifies folders and archives. The tools that train the models are in
`training/`.
"""
