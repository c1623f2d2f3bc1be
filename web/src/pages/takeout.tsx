// Take-out: ask for a copy of the account, follow it while it is made, download its archives
// (each link signed when it is clicked: the URLs live minutes, the archives 7 days).
import { useCallback, useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { takeout } from "../api";
import { saveUrl } from "../download";
import { ExportState, type Export } from "../gen/cumulo/takeout/v1/takeout_pb";
import { bytes, t, when } from "../i18n";
import { Alert, useCalls } from "./form";

const WORKING = [ExportState.QUEUED, ExportState.RUNNING];

function status(e: Export): string {
  switch (e.state) {
    case ExportState.QUEUED:
      return t("exportQueued");
    case ExportState.RUNNING:
      return t("exportRunning", { done: Number(e.filesDone), total: Number(e.filesTotal), written: bytes(Number(e.bytesWritten)) });
    case ExportState.READY:
      return t("exportReady", {
        size: bytes(e.archives.reduce((sum, a) => sum + Number(a.size), 0)),
        when: e.expiresAt ? when(timestampDate(e.expiresAt)) : "",
      });
    case ExportState.FAILED:
      return t("exportFailed", { why: e.failure });
    default:
      return t("exportExpired");
  }
}

export function Takeout() {
  const [list, setList] = useState<Export[] | null>(null);
  const { problem, run } = useCalls();
  const load = useCallback(() => run(async () => setList((await takeout.listExports({})).exports)), [run]);

  useEffect(() => {
    void load();
  }, [load]);
  // While one is being made, its progress every two seconds.
  const working = list?.some((e) => WORKING.includes(e.state)) ?? false;
  useEffect(() => {
    if (!working) return;
    const timer = setInterval(() => void load(), 2000);
    return () => clearInterval(timer);
  }, [working, load]);

  const start = () => run(async () => {
    await takeout.startExport({});
    await load();
  });
  const download = (exportId: string, name: string) => run(async () => {
    const fresh = (await takeout.getExport({ exportId })).export;
    const archive = fresh?.archives.find((a) => a.name === name);
    if (archive?.downloadUrl) saveUrl(archive.downloadUrl, name);
  });

  return (
    <section aria-labelledby="takeout-title">
      <h1 id="takeout-title">{t("takeoutTitle")}</h1>
      <p>{t("takeoutText")}</p>
      <Alert problem={problem} />
      <button type="button" onClick={() => void start()} disabled={working}>
        {t("startExport")}
      </button>
      {list && list.length === 0 && <p>{t("noExports")}</p>}
      <ul class="plain">
        {list?.map((e) => (
          <li key={e.exportId} data-export={e.exportId}>
            <span class="hint">{e.requestedAt ? when(timestampDate(e.requestedAt)) : ""}</span> · <span role="status">{status(e)}</span>
            {e.state === ExportState.READY && (
              <ul class="plain">
                {e.archives.map((a) => (
                  <li key={a.name}>
                    <button type="button" class="link" onClick={() => void download(e.exportId, a.name)}>
                      {t("downloadArchive", { name: a.name })}
                    </button>{" "}
                    <span class="hint">{bytes(Number(a.size))} · SHA-256 {a.sha256.slice(0, 12)}…</span>
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
