// A folder: its files and folders, upload (drop or choose, many at once, pause and resume),
// download by signed URL, new folder, rename, move to trash; the account's usage.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { blob } from "../api";
import { NodeKind, type Node } from "../gen/cumulo/blob/v1/blob_pb";
import { byName, bytes, t, when } from "../i18n";
import { save } from "../download";
import { unfinished, upload, type UploadProgress } from "../upload";
import { SharePanel } from "./share";
import { hasThumbnail, thumbnail } from "../thumbnails";
import { Alert, Field, problemOf, useCalls, type Problem } from "./form";

interface Transfer {
  id: number;
  progress: UploadProgress;
  stop: AbortController;
  problem?: Problem;
}

let nextTransfer = 0;

export function Files({ folderId }: { folderId: string }) {
  const [nodes, setNodes] = useState<Node[] | null>(null);
  const [trail, setTrail] = useState<Node[]>([]);
  const [usage, setUsage] = useState<{ used: bigint; quota: bigint } | null>(null);
  const { problem, run } = useCalls();
  const [transfers, setTransfers] = useState<Transfer[]>([]);
  const [naming, setNaming] = useState(false);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    const listed: Node[] = [];
    let pageToken = "";
    do {
      const page = await blob.listFolder({ folderId, pageSize: 1000, pageToken });
      listed.push(...page.nodes);
      pageToken = page.nextPageToken;
    } while (pageToken);
    listed.sort((a, b) => (a.kind === b.kind ? byName(a.name, b.name) : a.kind === NodeKind.FOLDER ? -1 : 1));
    setNodes(listed);
    const chain: Node[] = [];
    for (let id = folderId; id; ) {
      const { node } = await blob.stat({ nodeId: id });
      if (!node) break;
      chain.unshift(node);
      id = node.parentId;
    }
    setTrail(chain);
    const used = await blob.getUsage({});
    setUsage({ used: used.used, quota: used.quota });
  }, [folderId]);

  useEffect(() => {
    setNodes(null);
    void run(load);
  }, [run, load]);

  function update(id: number, change: Partial<Transfer>) {
    setTransfers((all) => all.map((one) => (one.id === id ? { ...one, ...change } : one)));
  }

  async function send(files: File[]) {
    for (const file of files) {
      const id = nextTransfer++;
      const stop = new AbortController();
      const transfer: Transfer = { id, stop, progress: { file, sent: 0, phase: "hashing" } };
      setTransfers((all) => [...all, transfer]);
      try {
        await upload(file, folderId, stop.signal, (progress) => update(id, { progress }));
        update(id, { progress: { file, sent: file.size, phase: "done" } });
      } catch (error) {
        if (stop.signal.aborted) update(id, { progress: { ...transfer.progress, phase: "paused" } });
        else update(id, { progress: { file, sent: 0, phase: "failed" }, problem: problemOf(error) });
      }
      void run(load);
    }
  }

  async function createFolder(event: Event) {
    event.preventDefault();
    const name = String(new FormData(event.currentTarget as HTMLFormElement).get("name"));
    if (await run(() => blob.createFolder({ parentId: folderId, name }))) {
      setNaming(false);
      void run(load);
    }
  }

  const act = async (action: () => Promise<unknown>) => {
    if (await run(action)) void run(load);
  };

  const download = (node: Node) => run(async () => save((await blob.getDownloadUrl({ nodeId: node.nodeId })).download, node.name));

  // Where an item here can go: the folders above (the root first) and the folders in this one.
  const targets: Target[] = [
    ...(folderId ? [{ id: "", name: t("root") }] : []),
    ...trail.slice(0, -1).map((f) => ({ id: f.nodeId, name: f.name })),
    ...(nodes ?? []).filter((n) => n.kind === NodeKind.FOLDER).map((f) => ({ id: f.nodeId, name: `${f.name}/` })),
  ];

  const left = unfinished(folderId).filter((u) => !transfers.some((x) => x.progress.file.name === u.name && x.progress.phase !== "paused"));

  return (
    <section
      class={`files${dragging ? " dragging" : ""}`}
      aria-labelledby="files-title"
      onDragOver={(e) => (e.preventDefault(), setDragging(true))}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        void send([...(e.dataTransfer?.files ?? [])]);
      }}
    >
      <nav aria-label="breadcrumb" class="trail">
        <a href="/files">{t("root")}</a>
        {trail.map((folder) => (
          <span key={folder.nodeId}>
            {" / "}
            <a href={`/files/${folder.nodeId}`}>{folder.name}</a>
          </span>
        ))}
      </nav>
      <h1 id="files-title">{trail.length ? trail[trail.length - 1].name : t("root")}</h1>
      {usage && (
        <p class="usage">
          <meter min={0} max={Number(usage.quota)} value={Number(usage.used)} aria-label={t("used", { used: "", quota: "" })} />{" "}
          {t("used", { used: bytes(Number(usage.used)), quota: bytes(Number(usage.quota)) })}
        </p>
      )}
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => picker.current?.click()}>
          {t("upload")}
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          class="hidden"
          aria-label={t("upload")}
          data-testid="upload-input"
          onChange={(e) => {
            const input = e.target as HTMLInputElement;
            void send([...(input.files ?? [])]);
            input.value = "";
          }}
        />
        <button type="button" onClick={() => setNaming(true)}>
          {t("newFolder")}
        </button>
      </div>
      <p class="hint">{t("dropHere")}</p>
      {naming && (
        <form class="inline" onSubmit={createFolder}>
          <label for="folder-name">{t("folderName")}</label>
          <input id="folder-name" name="name" required autoFocus />
          <button type="submit">{t("create")}</button>
          <button type="button" onClick={() => setNaming(false)}>
            {t("cancel")}
          </button>
        </form>
      )}
      {left.map((u) => (
        <p class="note" key={u.name}>
          {t("paused", { name: u.name, percent: "" })}
        </p>
      ))}
      <ul class="transfers" aria-live="polite">
        {transfers
          .filter((x) => x.progress.phase !== "done")
          .map((x) => {
            const percent = x.progress.file.size ? Math.floor((100 * x.progress.sent) / x.progress.file.size) : 100;
            return (
              <li key={x.id}>
                {x.progress.phase === "paused" ? t("paused", { name: x.progress.file.name, percent }) : t("uploading", { name: x.progress.file.name, percent })}
                <progress max={100} value={percent} />
                {x.progress.phase === "sending" || x.progress.phase === "hashing" ? (
                  <button type="button" onClick={() => x.stop.abort()}>
                    {t("pause")}
                  </button>
                ) : x.progress.phase === "paused" ? (
                  <button type="button" onClick={() => (setTransfers((all) => all.filter((o) => o.id !== x.id)), void send([x.progress.file]))}>
                    {t("resume")}
                  </button>
                ) : null}
                {x.problem && <Alert problem={x.problem} />}
              </li>
            );
          })}
      </ul>
      <Alert problem={problem} />
      {nodes === null ? (
        !problem && <p aria-busy="true">{t("loading")}</p>
      ) : nodes.length === 0 ? (
        <p>{t("empty")}</p>
      ) : (
        <table class="listing">
          <thead>
            <tr>
              <th scope="col">{t("name")}</th>
              <th scope="col">{t("size")}</th>
              <th scope="col">{t("modified")}</th>
              <th scope="col">{t("actions")}</th>
            </tr>
          </thead>
          <tbody>
            {nodes.map((node) => (
              <Row key={node.nodeId} node={node} onDownload={download} act={act} targets={targets.filter((f) => f.id !== node.nodeId)} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface Target {
  id: string;
  name: string;
}

function Row({
  node,
  onDownload,
  act,
  targets,
}: {
  node: Node;
  onDownload: (node: Node) => void;
  act: (action: () => Promise<unknown>) => void;
  targets: Target[];
}) {
  const folder = node.kind === NodeKind.FOLDER;
  const [sharing, setSharing] = useState(false);
  const [moving, setMoving] = useState(false);
  const modified = node.modifiedAt ? when(timestampDate(node.modifiedAt)) : "";
  function rename() {
    const name = window.prompt(t("rename"), node.name);
    if (name && name !== node.name) act(() => blob.rename({ nodeId: node.nodeId, newName: name }));
  }
  return (
    <tr>
      <td>
        {folder ? (
          <a href={`/files/${node.nodeId}`} class="folder">
            {node.name}
          </a>
        ) : (
          <span class="file">
            {hasThumbnail(node) && <Thumb node={node} />}
            {node.name}
          </span>
        )}
      </td>
      <td>{folder ? "" : bytes(Number(node.size))}</td>
      <td>{modified}</td>
      <td class="row-actions">
        {!folder && (
          <button type="button" onClick={() => onDownload(node)} aria-label={`${t("download")} ${node.name}`}>
            {t("download")}
          </button>
        )}
        <button type="button" onClick={rename} aria-label={`${t("rename")} ${node.name}`}>
          {t("rename")}
        </button>
        {targets.length > 0 && (
          <button type="button" onClick={() => setMoving(!moving)} aria-expanded={moving} aria-label={`${t("move")} ${node.name}`}>
            {t("move")}
          </button>
        )}
        <button type="button" onClick={() => setSharing(!sharing)} aria-expanded={sharing} aria-label={`${t("share")} ${node.name}`}>
          {t("share")}
        </button>
        <button type="button" onClick={() => act(() => blob.delete({ nodeId: node.nodeId }))} aria-label={`${t("delete")} ${node.name}`}>
          {t("delete")}
        </button>
        {moving && (
          <form
            class="inline panel"
            onSubmit={(e) => {
              e.preventDefault();
              const to = String(new FormData(e.currentTarget as HTMLFormElement).get("to"));
              setMoving(false);
              act(() => blob.move({ nodeId: node.nodeId, newParentId: to }));
            }}
          >
            <Field id={`move-${node.nodeId}`} label={t("moveTo")}>
              <select id={`move-${node.nodeId}`} name="to">
                {targets.map((target) => (
                  <option key={target.id} value={target.id}>
                    {target.name}
                  </option>
                ))}
              </select>
            </Field>
            <button type="submit">{t("move")}</button>
          </form>
        )}
        {sharing && <SharePanel node={node} onClose={() => setSharing(false)} />}
      </td>
    </tr>
  );
}

/** A photo's thumbnail, asked for once the row comes into view. */
function Thumb({ node }: { node: Node }) {
  const [url, setUrl] = useState<string | null | undefined>(undefined); // undefined: not yet known
  const holder = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    let live = true;
    const seen = new IntersectionObserver((entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      seen.disconnect();
      void thumbnail(node).then((made) => live && setUrl(made));
    });
    seen.observe(element);
    return () => {
      live = false;
      seen.disconnect();
    };
  }, [node]);
  if (url === null) return null; // not a picture after all (or too big): no empty box
  return (
    <span class="thumb" ref={holder}>
      {url && <img src={url} alt="" width={48} height={48} />}
    </span>
  );
}
