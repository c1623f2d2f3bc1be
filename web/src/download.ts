// A download is a plain link to a signed URL (same origin: the gateway's route to the object
// store): the browser saves it itself, no bytes pass through the page's memory.
import type { DownloadUrl } from "./gen/cumulo/blob/v1/blob_pb";

export function save(signed: DownloadUrl | undefined, name: string): void {
  if (!signed) return;
  saveUrl(signed.url, name);
}

export function saveUrl(url: string, name: string): void {
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = name;
  anchor.rel = "noopener";
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
}
