// Shrinking big photos: the arithmetic only (no DOM, no canvas), so that Node can
// test it (tests/js/shrink.test.js). prepare.js does the decoding and drawing.
//
// A photo larger than BIG_PHOTO on its long side (four times the largest network input
// of any base, 260 px) is shrunk before upload to the size the server would decode the
// original at anyway: its JPEG decoder scales by 1/2, 1/4 or 1/8 while both sides stay
// at least the "decode floor" (set by the page from the largest network input). The
// server then resizes from the same number of pixels either way; at JPEG quality 0.95
// the verdicts stay those of the original (tests/browser/test_phone_photos.py,
// bench/upload.py). Smaller photos are small files: they go as they are.

export const BIG_PHOTO = 1040;
export const DCT_SCALES = [8, 4, 2];
export const JPEG_QUALITY = 0.95;
// Enough of a file to find a JPEG's frame header behind its EXIF, ICC and XMP blocks.
export const JPEG_HEADER_BYTES = 256 * 1024;
// The decode floor when the page does not say (the 224-px networks').
export const DEFAULT_DECODE_FLOOR = 224;
export const THUMBNAIL_SIDE = 96;

// The largest of the JPEG decoder's reductions that keeps both sides >= decodeFloor.
export function decodeScale(width, height, decodeFloor) {
  const room = Math.min(width, height) / decodeFloor;
  return DCT_SCALES.find((scale) => scale <= room) || 1;
}

// What to divide a photo's sides by before sending it: 1 (send it as it is) unless it
// is big, else the server's own decoding scale.
export function shrinkDivisor(width, height, decodeFloor) {
  return Math.max(width, height) > BIG_PHOTO ? decodeScale(width, height, decodeFloor) : 1;
}

// Sides divided as the server's decoder divides them: rounded up.
export function scaledSize(width, height, divisor) {
  return { width: Math.ceil(width / divisor), height: Math.ceil(height / divisor) };
}

// A thumbnail's sides: the long one THUMBNAIL_SIDE, never below one pixel.
export function thumbnailSize(width, height, side = THUMBNAIL_SIDE) {
  const scale = side / Math.max(width, height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

// The file name a shrunk photo is sent under: the same name, now a JPEG.
export function jpegName(name) {
  return name.replace(/\.[^.]*$/, "") + ".jpg";
}

// Width and height from a JPEG's frame header (SOFn), given a DataView of the file's
// first bytes, or null (not a JPEG, or no frame header in those bytes).
export function jpegFrameSize(bytes) {
  if (bytes.byteLength < 4 || bytes.getUint16(0) !== 0xffd8) return null;
  let at = 2;
  while (at + 9 <= bytes.byteLength && bytes.getUint8(at) === 0xff) {
    const marker = bytes.getUint8(at + 1);
    if (marker === 0xff) { at += 1; continue; } // fill byte
    // SOF0-SOF15, except DHT (c4), JPG (c8) and DAC (cc), which share the range.
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) return { height: bytes.getUint16(at + 5), width: bytes.getUint16(at + 7) };
    at += 2 + bytes.getUint16(at + 2);
  }
  return null;
}
