// Sync and backups: synced data by zone, device backups with their dates and sizes, and how to
// restore one onto a device.
import { useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { backups, sync } from "../api";
import type { Backup, Zone } from "../gen/cumulo/sync/v1/sync_pb";
import { bytes, t, when } from "../i18n";
import { Alert, useCalls } from "./form";

export function Backups() {
  const [zones, setZones] = useState<Zone[] | null>(null);
  const [list, setList] = useState<Backup[]>([]);
  const [usage, setUsage] = useState<{ used: bigint; quota: bigint } | null>(null);
  const { problem, run } = useCalls();

  useEffect(() => {
    void run(async () => {
      setZones((await sync.listZones({})).zones);
      const used = await sync.getSyncUsage({});
      setUsage({ used: used.used, quota: used.quota });
      setList((await backups.listBackups({})).backups);
    });
  }, [run]);

  return (
    <section aria-labelledby="backups-title">
      <h1 id="backups-title">{t("backupsTitle")}</h1>
      <Alert problem={problem} />
      <h2>{t("syncedData")}</h2>
      {usage && <p>{t("used", { used: bytes(Number(usage.used)), quota: bytes(Number(usage.quota)) })}</p>}
      {zones && zones.length === 0 && <p>{t("noZones")}</p>}
      <ul class="plain">
        {zones?.map((zone) => (
          <li key={zone.name}>
            {zone.name} · {t("records", { n: Number(zone.recordCount) })} · {bytes(Number(zone.bytes))}
            {zone.modifiedAt ? <span class="hint"> · {when(timestampDate(zone.modifiedAt))}</span> : null}
          </li>
        ))}
      </ul>
      <h2>{t("deviceBackups")}</h2>
      {list.length === 0 ? (
        <p>{t("noBackups")}</p>
      ) : (
        <table class="listing">
          <thead>
            <tr>
              <th scope="col">{t("device")}</th>
              <th scope="col">{t("date")}</th>
              <th scope="col">{t("files")}</th>
              <th scope="col">{t("size")}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((backup) => (
              <tr key={backup.backupId}>
                <td>{backup.deviceName || backup.deviceId}</td>
                <td>{backup.createdAt ? when(timestampDate(backup.createdAt)) : ""}</td>
                <td>{String(backup.entryCount)}</td>
                <td>{bytes(Number(backup.totalSize))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>{t("restoreTitle")}</h2>
      <p>{t("restoreText")}</p>
      <pre class="terms">cumulo backup ls --device DEVICE{"\n"}cumulo backup restore BACKUP_ID FOLDER</pre>
    </section>
  );
}
