// The heat layer of an explanation, drawn in the browser from its grid (the API's
// explain=grid): the same picture as the server's (classifier/explain.py's heat_layer),
// which would cost it about a millisecond and 19 KB of PNG per answer. The grid is
// stretched over LAYER_SIZE pixels as Pillow's bilinear resize does it, coloured dark
// blue to red, and the colder a cell, the more transparent.

export const LAYER_SIZE = 112;
const MAX_ALPHA = 170;

// For each output pixel: the first input cell it reads and the weights of the cells
// from there (Pillow's bilinear filter, support 1 when enlarging; normalised, so the
// edges hold their value).
function resampling(inSize, outSize) {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  return Array.from({ length: outSize }, (_, out) => {
    const centre = (out + 0.5) * scale;
    const first = Math.max(Math.trunc(centre - support + 0.5), 0);
    const last = Math.min(Math.trunc(centre + support + 0.5), inSize);
    const weights = [];
    for (let cell = first; cell < last; cell++) {
      weights.push(Math.max(0, 1 - Math.abs((cell - centre + 0.5) / support)));
    }
    const total = weights.reduce((sum, w) => sum + w, 0);
    return { first, weights: weights.map((w) => (total ? w / total : 0)) };
  });
}

function stretched(rows, size) {
  const across = resampling(rows[0].length, size);
  const down = resampling(rows.length, size);
  const wide = rows.map((row) => across.map(({ first, weights }) =>
    weights.reduce((sum, w, i) => sum + w * row[first + i], 0)));
  return down.map(({ first, weights }) => Array.from({ length: size }, (_, x) =>
    weights.reduce((sum, w, i) => sum + w * wide[first + i][x], 0)));
}

// Colour of level 0-255: a "jet"-like scale, as in classifier/explain.py.
function colour(level) {
  const x = level / 255;
  const channel = (peak) => Math.round(Math.min(Math.max(1.5 - Math.abs(4 * x - peak), 0), 1) * 255);
  return [channel(3), channel(2), channel(1)];
}

// RGBA pixels (size x size, row by row) of the layer for `grid` (rows of 0-1 values).
export function heatPixels(grid, size = LAYER_SIZE) {
  const pixels = new Uint8ClampedArray(size * size * 4);
  stretched(grid, size).forEach((row, y) => row.forEach((value, x) => {
    const v = Math.min(Math.max(value, 0), 1);
    pixels.set([...colour(Math.round(v * 255)), Math.round(v * MAX_ALPHA)], (y * size + x) * 4);
  }));
  return pixels;
}

// The layer as a PNG data URI, for an <img> over the photo (needs a page: a canvas).
export function heatLayerUri(grid) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = LAYER_SIZE;
  canvas.getContext("2d").putImageData(new ImageData(heatPixels(grid), LAYER_SIZE), 0, 0);
  return canvas.toDataURL("image/png");
}
