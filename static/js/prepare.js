// Getting a photo ready to send: decoded and drawn on a canvas, shrunk to the server's
// decoding scale when it is big (the sizes come from shrink.js), upright, with a small
// thumbnail for the history. Needs a browser (canvas, createImageBitmap, WebCodecs).

import {
  JPEG_HEADER_BYTES, JPEG_QUALITY, jpegFrameSize, jpegName, scaledSize, shrinkDivisor, thumbnailSize,
} from "./shrink.js";

// Resolves with a "plan": what to send (`blob`, `name`), the original size, whether it
// was shrunk, and a thumbnail (a data: URL, or null when the browser cannot decode the
// photo). A big photo this browser can decode goes as a JPEG at the server's decoding
// scale, upright (EXIF orientation applied here, once). HEIC and other formats the
// browser cannot decode go as they are; the server reads them.
export async function preparePhoto(file, { shrinking, decodeFloor }) {
  const plan = { blob: file, name: file.name || "photo.jpg", original: file.size, shrunk: false, thumb: null };
  const scaled = shrinking ? await jpegAtDecodeScale(file, decodeFloor) : null;
  if (scaled) return sendShrunk(plan, scaled);
  if (!window.createImageBitmap) return plan;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (cannotDecode) {
    return plan;
  }
  const divisor = shrinkDivisor(bitmap.width, bitmap.height, decodeFloor);
  if (shrinking && divisor > 1) {
    const size = scaledSize(bitmap.width, bitmap.height, divisor);
    const canvas = drawn(bitmap, size.width, size.height);
    bitmap.close();
    return sendShrunk(plan, canvas);
  }
  plan.thumb = thumbnail(bitmap);
  bitmap.close();
  return plan;
}

// A frame of a playing <video> as a JPEG file, already at the size the server would
// decode a photo that large at (see preparePhoto), so it is encoded once and sent as it is.
export function videoFrame(video, decodeFloor) {
  const width = video.videoWidth, height = video.videoHeight;
  const size = scaledSize(width, height, shrinkDivisor(width, height, decodeFloor));
  const canvas = drawn(video, size.width, size.height);
  return new Promise((done) => {
    canvas.toBlob((blob) => done(new File([blob], "camera.jpg", { type: "image/jpeg" })),
                  "image/jpeg", JPEG_QUALITY);
  });
}

// The shrunk copy goes only if it is smaller than the file (it nearly always is).
async function sendShrunk(plan, canvas) {
  const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", JPEG_QUALITY));
  if (blob && blob.size < plan.original) {
    plan.blob = blob;
    plan.name = jpegName(plan.name);
    plan.shrunk = true;
  }
  plan.thumb = thumbnail(canvas);
  return plan;
}

function drawn(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, width, height);
  return canvas;
}

// A big JPEG decoded straight at the server's decoding scale, on a canvas, upright; null
// where that cannot be done (not a JPEG, small, no WebCodecs). The browser's JPEG decoder
// then scales in the DCT as the server's does (both are libjpeg-turbo), which skips most
// of a full-size decode: 48 ms instead of 115 ms for a 12 MP photo in Chromium here
// (createImageBitmap decodes every pixel whatever size it is asked for).
async function jpegAtDecodeScale(file, decodeFloor) {
  if (!window.ImageDecoder || file.type !== "image/jpeg") return null;
  let decoder;
  try {
    const stored = jpegFrameSize(new DataView(await file.slice(0, JPEG_HEADER_BYTES).arrayBuffer()));
    if (!stored) return null;
    const divisor = shrinkDivisor(stored.width, stored.height, decodeFloor);
    if (divisor === 1) return null;
    // Sizes as stored; the frame carries the EXIF rotation, which drawImage applies.
    const desired = scaledSize(stored.width, stored.height, divisor);
    decoder = new ImageDecoder({ data: await file.arrayBuffer(), type: "image/jpeg",
                                 desiredWidth: desired.width, desiredHeight: desired.height });
    const frame = (await decoder.decode()).image;
    const canvas = drawn(frame, frame.displayWidth, frame.displayHeight);
    frame.close();
    return canvas;
  } catch (cannotDecode) {
    return null; // e.g. a CMYK JPEG: the full decode, or the file as it is
  } finally {
    if (decoder) decoder.close();
  }
}

function thumbnail(source) {
  const size = thumbnailSize(source.width, source.height);
  const canvas = document.createElement("canvas");
  canvas.width = size.width;
  canvas.height = size.height;
  canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.7);
}
