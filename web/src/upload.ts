// Uploads from the browser with PutUploadPart (unary: grpc-web cannot stream up). The file is
// hashed in slices first (memory stays at one slice), then sent in whole parts from the
// committed offset. What an upload needs to go on is kept in localStorage under the file's
// name, size and date, so choosing the same file again after a reload resumes it.
import { create } from "@bufbuild/protobuf";
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";
import { blob, reasonOf } from "./api";
import { PutUploadPartRequestSchema, StartUploadRequestSchema, type Node } from "./gen/cumulo/blob/v1/blob_pb";

const SLICE = 4 * 1024 * 1024;
const PREFIX = "cumulo.upload.";

interface Pending {
  uploadId: string;
  sha256: string;
  partSize: number;
}

export interface UploadProgress {
  file: File;
  sent: number;
  phase: "hashing" | "sending" | "paused" | "done" | "failed";
}

function keyOf(file: File, parentId: string): string {
  return `${PREFIX}${parentId}/${file.name}/${file.size}/${file.lastModified}`;
}

async function hashOf(file: File, signal: AbortSignal, progress: (done: number) => void): Promise<string> {
  const hash = sha256.create();
  for (let offset = 0; offset < file.size; offset += SLICE) {
    signal.throwIfAborted();
    hash.update(new Uint8Array(await file.slice(offset, offset + SLICE).arrayBuffer()));
    progress(Math.min(offset + SLICE, file.size));
  }
  return bytesToHex(hash.digest());
}

/** The file uploaded into `parentId`; `signal` pauses it (it can be resumed, here or after a reload). */
export async function upload(
  file: File,
  parentId: string,
  signal: AbortSignal,
  report: (progress: UploadProgress) => void,
): Promise<Node> {
  const key = keyOf(file, parentId);
  let pending: Pending | null = JSON.parse(window.localStorage.getItem(key) ?? "null");
  let offset = 0;
  if (pending) {
    try {
      const state = await blob.getUpload({ uploadId: pending.uploadId }, { signal });
      if (state.file) {
        window.localStorage.removeItem(key);
        return state.file;
      }
      offset = Number(state.committedOffset);
    } catch (error) {
      if (signal.aborted) throw error;
      pending = null; // expired or gone: start again
    }
  }
  if (!pending) {
    report({ file, sent: 0, phase: "hashing" });
    const digest = await hashOf(file, signal, () => report({ file, sent: 0, phase: "hashing" }));
    const started = await blob.startUpload(
      create(StartUploadRequestSchema, {
        parentId,
        name: file.name,
        size: BigInt(file.size),
        sha256: digest,
        contentType: file.type || "application/octet-stream",
      }),
      { signal },
    );
    if (started.file) return started.file; // the account holds this content already
    pending = { uploadId: started.uploadId, sha256: digest, partSize: Number(started.partSize) };
    window.localStorage.setItem(key, JSON.stringify(pending));
    offset = Number(started.committedOffset);
  }
  for (;;) {
    report({ file, sent: offset, phase: "sending" });
    const data = new Uint8Array(await file.slice(offset, offset + pending.partSize).arrayBuffer());
    let answer;
    try {
      answer = await blob.putUploadPart(
        create(PutUploadPartRequestSchema, { uploadId: pending.uploadId, offset: BigInt(offset), data }),
        { signal },
      );
    } catch (error) {
      if (["UPLOAD_CLOSED", "UPLOAD_LOST", "UPLOAD_NOT_FOUND"].includes(reasonOf(error) ?? "")) window.localStorage.removeItem(key);
      throw error;
    }
    if (answer.file) {
      window.localStorage.removeItem(key);
      report({ file, sent: file.size, phase: "done" });
      return answer.file;
    }
    offset = Number(answer.committedOffset);
  }
}

/** Uploads left unfinished in this browser (after a reload): what to ask the person to choose again. */
export function unfinished(parentId: string): { name: string; size: number }[] {
  const found: { name: string; size: number }[] = [];
  for (let i = 0; i < window.localStorage.length; i++) {
    const key = window.localStorage.key(i) ?? "";
    if (!key.startsWith(`${PREFIX}${parentId}/`)) continue;
    const [name, size] = key.slice(PREFIX.length + parentId.length + 1).split("/");
    found.push({ name, size: Number(size) });
  }
  return found;
}
