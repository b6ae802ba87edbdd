/**
 * Image files <-> CHW float images for the detection data layer: decoding at the stored size (no
 * resize, no EXIF rotation: COCO's width/height describe the stored pixels) and PNG encoding.
 */
import sharp from 'sharp';
import { type Image, hwcU8ToChw } from '../../data/image.ts';

/** CHW float in [0, 1] (1 or 3 channels) -> interleaved RGB bytes, clamped and rounded. */
export function chwToRgbU8(img: Image): Buffer {
  const n = img.height * img.width;
  const out = Buffer.alloc(n * 3);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      const v = img.data[(img.channels === 3 ? c : 0) * n + p]!;
      out[p * 3 + c] = Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255);
    }
  }
  return out;
}

/** CHW float in [0, 1] -> PNG bytes. */
export async function encodePng(img: Image): Promise<Buffer> {
  return sharp(chwToRgbU8(img), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
}

/** Decode an image file (JPEG, PNG, WebP, ...) to 3-channel CHW in [0, 1] at its stored size. */
export async function decodeImageFile(file: string): Promise<Image> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const img = hwcU8ToChw(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.height, info.width, info.channels);
  if (img.channels === 3) return img;
  if (img.channels === 1) {
    const n = info.height * info.width;
    const out = new Float32Array(3 * n);
    for (let c = 0; c < 3; c++) out.set(img.data, c * n);
    return { data: out, channels: 3, height: info.height, width: info.width };
  }
  throw new Error(`decoded to ${img.channels} channels, expected 1 or 3`);
}
