// static/js/shrink.js: the sizes a big photo is shrunk to before upload, and the JPEG
// frame header they are read from.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BIG_PHOTO, decodeScale, jpegFrameSize, jpegName, scaledSize, shrinkDivisor, thumbnailSize,
} from "../../static/js/shrink.js";

const FLOOR = 224; // the 224-px networks' decode floor (the page's data-decode-floor)

test("the largest DCT scale that keeps both sides at the decode floor", () => {
  assert.equal(decodeScale(4000, 3000, FLOOR), 8); // 3000 / 8 = 375 >= 224
  assert.equal(decodeScale(3000, 4000, FLOOR), 8); // portrait alike
  assert.equal(decodeScale(2000, 1500, FLOOR), 4); // 1500 / 8 < 224 <= 1500 / 4
  assert.equal(decodeScale(1200, 900, FLOOR), 4);
  assert.equal(decodeScale(1100, 500, FLOOR), 2);
  assert.equal(decodeScale(1100, 447, FLOOR), 1); // 447 / 2 < 224
  assert.equal(decodeScale(1792, 1792, FLOOR), 8); // exactly at the floor still counts
  assert.equal(decodeScale(4000, 3000, 260), 8);
  assert.equal(decodeScale(4000, 2000, 260), 4); // 2000 / 8 = 250 < 260
});

test("only photos longer than BIG_PHOTO are shrunk", () => {
  assert.equal(BIG_PHOTO, 1040);
  assert.equal(shrinkDivisor(BIG_PHOTO, 1000, FLOOR), 1);
  assert.equal(shrinkDivisor(BIG_PHOTO + 1, 1000, FLOOR), 4);
  assert.equal(shrinkDivisor(512, 384, FLOOR), 1);
  assert.equal(shrinkDivisor(4000, 3000, FLOOR), 8);
  assert.equal(shrinkDivisor(5000, 300, FLOOR), 1); // a panorama too thin to reduce
});

test("sides are divided and rounded up, as libjpeg's scaled decoding does", () => {
  assert.deepEqual(scaledSize(4000, 3000, 8), { width: 500, height: 375 });
  assert.deepEqual(scaledSize(4001, 3001, 8), { width: 501, height: 376 });
  assert.deepEqual(scaledSize(1280, 720, 1), { width: 1280, height: 720 });
});

test("thumbnails keep the aspect ratio and at least one pixel", () => {
  assert.deepEqual(thumbnailSize(4000, 3000), { width: 96, height: 72 });
  assert.deepEqual(thumbnailSize(300, 400), { width: 72, height: 96 });
  assert.deepEqual(thumbnailSize(5000, 10), { width: 96, height: 1 });
  assert.deepEqual(thumbnailSize(20, 10, 40), { width: 40, height: 20 });
});

test("a shrunk photo is sent under its own name, as a JPEG", () => {
  assert.equal(jpegName("IMG_0001.HEIC"), "IMG_0001.jpg");
  assert.equal(jpegName("lunch.png"), "lunch.jpg");
  assert.equal(jpegName("my.lunch.jpeg"), "my.lunch.jpg");
  assert.equal(jpegName("photo"), "photo.jpg");
});

// A JPEG's first bytes: SOI, then the given segments (marker, payload bytes).
function jpeg(...segments) {
  const bytes = [0xff, 0xd8];
  for (const [marker, payload] of segments) {
    const length = payload.length + 2;
    bytes.push(0xff, marker, length >> 8, length & 0xff, ...payload);
  }
  return new DataView(new Uint8Array(bytes).buffer);
}

// A frame header's payload: precision, height, width, one component.
function frame(width, height) {
  return [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0];
}

test("the frame size is found behind EXIF and other blocks", () => {
  const exif = new Array(3000).fill(0x45);
  assert.deepEqual(jpegFrameSize(jpeg([0xe1, exif], [0xdb, new Array(65).fill(1)], [0xc0, frame(4000, 3000)])),
                   { width: 4000, height: 3000 });
  // Progressive (SOF2) and other frame types count; a Huffman table (C4) does not.
  assert.deepEqual(jpegFrameSize(jpeg([0xc4, frame(1, 1)], [0xc2, frame(640, 480)])),
                   { width: 640, height: 480 });
});

test("fill bytes between segments are skipped", () => {
  const view = jpeg([0xe0, [0, 0, 0, 0]], [0xc0, frame(300, 200)]);
  const bytes = new Uint8Array(view.buffer);
  const padded = new Uint8Array([...bytes.slice(0, 10), 0xff, 0xff, ...bytes.slice(10)]);
  assert.deepEqual(jpegFrameSize(new DataView(padded.buffer)), { width: 300, height: 200 });
});

test("no size for what is not a JPEG, or has no frame header in the bytes read", () => {
  assert.equal(jpegFrameSize(new DataView(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0]).buffer)), null);
  assert.equal(jpegFrameSize(new DataView(new Uint8Array([0xff, 0xd8]).buffer)), null);
  assert.equal(jpegFrameSize(jpeg([0xe1, new Array(100).fill(0)])), null); // cut off after EXIF
  assert.equal(jpegFrameSize(new DataView(new ArrayBuffer(0))), null);
});
