// Photo thumbnails, made in the browser when a photo comes into view: its signed URL fetched,
// decoded straight to a small bitmap, kept as a small JPEG. Memory stays flat: at most two
// photos are fetched and decoded at a time, photos over 10 MB get no thumbnail, and only the
// small thumbnails are kept (one per content, for this page's life). (Server-made thumbnails
// would save the bytes; they are not there yet.)
import { blob } from "./api";
import type { Node } from "./gen/cumulo/blob/v1/blob_pb";

const SIZE = 96;
const MAX_BYTES = 10 * 1000 * 1000;
const AT_ONCE = 2;
const TYPES = /^image\/(jpeg|png|webp|gif|avif|bmp)$/;
const EXTENSIONS = /\.(jpe?g|png|webp|gif|avif|bmp)$/i;

const made = new Map<string, Promise<string | null>>();
let running = 0;
const waiting: (() => void)[] = [];

export function hasThumbnail(node: Node): boolean {
  return Number(node.size) > 0 && Number(node.size) <= MAX_BYTES && !node.blocked && (TYPES.test(node.contentType) || EXTENSIONS.test(node.name));
}

async function turn<T>(work: () => Promise<T>): Promise<T> {
  if (running >= AT_ONCE) await new Promise<void>((go) => waiting.push(go));
  running += 1;
  try {
    return await work();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

async function make(node: Node): Promise<string | null> {
  return turn(async () => {
    const { download } = await blob.getDownloadUrl({ nodeId: node.nodeId });
    if (!download) return null;
    const response = await fetch(download.url);
    if (!response.ok) return null;
    // Decoded at twice the thumbnail's width (never at the photo's full size), its aspect kept,
    // then the middle square drawn.
    const bitmap = await createImageBitmap(await response.blob(), { resizeWidth: 2 * SIZE, resizeQuality: "medium" });
    const side = Math.min(bitmap.width, bitmap.height);
    const canvas = document.createElement("canvas");
    canvas.width = SIZE;
    canvas.height = SIZE;
    canvas.getContext("2d")?.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, SIZE, SIZE);
    bitmap.close();
    const small = await new Promise<Blob | null>((done) => canvas.toBlob(done, "image/jpeg", 0.8));
    return small ? URL.createObjectURL(small) : null;
  });
}

/** An object URL of the photo's thumbnail (null: none can be made). */
export function thumbnail(node: Node): Promise<string | null> {
  const key = node.sha256 || node.nodeId;
  let found = made.get(key);
  if (!found) {
    found = make(node).catch(() => null);
    made.set(key, found);
  }
  return found;
}
