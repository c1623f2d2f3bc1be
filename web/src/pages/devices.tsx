// Find my device: the account's devices, the last position and the day's track (on a map of
// the tile server the gateway names, or else on a plain grid: no tiles are fetched from
// anywhere else), ring, lost mode, and wipe (the password once more first).
import { useCallback, useEffect, useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { auth, locator } from "../api";
import {
  CommandKind,
  CommandState,
  LostModeSchema,
  SendCommandRequestSchema,
  type Command,
  type Device,
  type Location,
} from "../gen/cumulo/locator/v1/locator_pb";
import { t, when } from "../i18n";
import { consoleConfig } from "../config";
import { session } from "../session";
import { TrackMap } from "./map";
import { Alert, Field, useCalls } from "./form";

const DAY = 24 * 3600 * 1000;

export function Devices() {
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [chosen, setChosen] = useState<string>("");
  const { problem, run } = useCalls();

  const load = useCallback(async () => {
    const found = (await locator.listDevices({})).devices;
    setDevices(found);
    setChosen((now) => now || found[0]?.deviceId || "");
  }, []);
  useEffect(() => void run(load), [run, load]);

  const device = devices?.find((d) => d.deviceId === chosen);
  return (
    <section aria-labelledby="devices-title">
      <h1 id="devices-title">{t("devices")}</h1>
      <Alert problem={problem} />
      {devices === null ? (
        <p aria-busy="true">{t("loading")}</p>
      ) : devices.length === 0 ? (
        <p>{t("noDevices")}</p>
      ) : (
        <>
          <ul class="plain devices">
            {devices.map((d) => (
              <li key={d.deviceId}>
                <button type="button" class={d.deviceId === chosen ? "chosen" : ""} aria-pressed={d.deviceId === chosen} onClick={() => setChosen(d.deviceId)}>
                  {d.name || d.deviceId}
                </button>{" "}
                <span class="hint">
                  {d.model} {d.lastSeenAt ? `· ${t("lastSeen", { when: when(timestampDate(d.lastSeenAt)) })}` : ""}
                  {d.battery >= 0 ? ` · ${d.battery}%` : ""}
                  {d.lostMode?.enabled ? ` · ${t("lostModeOn")}` : ""}
                </span>
              </li>
            ))}
          </ul>
          {device && <DeviceView key={device.deviceId} device={device} reload={load} />}
        </>
      )}
    </section>
  );
}

function DeviceView({ device, reload }: { device: Device; reload: () => Promise<void> }) {
  const [track, setTrack] = useState<Location[]>([]);
  const [commands, setCommands] = useState<Command[]>([]);
  const { problem, run } = useCalls();
  const [wiping, setWiping] = useState(false);
  const [tiles, setTiles] = useState("");
  const id = device.deviceId;
  useEffect(() => void consoleConfig().then((config) => setTiles(config.mapTiles)), []);

  const load = useCallback(async () => {
    const history = await locator.getHistory({ deviceId: id, since: timestampFromMs(Date.now() - DAY), pageSize: 1000 });
    setTrack(history.locations);
    setCommands((await locator.listCommands({ deviceId: id, limit: 10 })).commands);
  }, [id]);
  useEffect(() => void run(load), [run, load]);

  const send = (kind: CommandKind, extra: Partial<{ ringSeconds: number; lostMode: ReturnType<typeof lostMode> }> = {}) =>
    run(async () => {
      await locator.sendCommand(create(SendCommandRequestSchema, { deviceId: id, kind, ...extra }));
      await load();
      await reload();
    });

  async function wipe(event: Event) {
    event.preventDefault();
    const password = String(new FormData(event.currentTarget as HTMLFormElement).get("password"));
    await run(async () => {
      const confirmed = await auth.confirmPassword({ password });
      session.replaceAccess(confirmed.accessToken, confirmed.accessTokenExpiresAt);
      await locator.sendCommand(create(SendCommandRequestSchema, { deviceId: id, kind: CommandKind.WIPE }));
      setWiping(false);
      await load();
    });
  }

  const last = device.lastLocation;
  return (
    <div class="device">
      <h2>{device.name || device.deviceId}</h2>
      {last?.measuredAt ? (
        <p>
          {t("lastPosition", {
            lat: last.latitude.toFixed(5),
            lon: last.longitude.toFixed(5),
            accuracy: Math.round(last.accuracy),
            when: when(timestampDate(last.measuredAt)),
          })}
        </p>
      ) : (
        <p>{t("noPosition")}</p>
      )}
      {tiles ? <TrackMap points={track} tiles={tiles} /> : <Track points={track} />}
      <div class="toolbar">
        <button type="button" onClick={() => send(CommandKind.RING, { ringSeconds: 30 })}>
          {t("ring")}
        </button>
        {device.lostMode?.enabled ? (
          <button type="button" onClick={() => send(CommandKind.LOST_MODE, { lostMode: lostMode(false, "", "") })}>
            {t("lostModeOff")}
          </button>
        ) : null}
        <button type="button" class="danger" onClick={() => setWiping(!wiping)} aria-expanded={wiping}>
          {t("wipe")}
        </button>
      </div>
      {!device.lostMode?.enabled && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget as HTMLFormElement);
            void send(CommandKind.LOST_MODE, { lostMode: lostMode(true, String(form.get("message")), String(form.get("phone"))) });
          }}
        >
          <Field id="lost-message" label={t("lostMessage")}>
            <input id="lost-message" name="message" required />
          </Field>
          <Field id="lost-phone" label={t("lostPhone")}>
            <input id="lost-phone" name="phone" type="tel" />
          </Field>
          <button type="submit">{t("lostModeOn")}</button>
        </form>
      )}
      {wiping && (
        <form onSubmit={wipe} class="danger-zone">
          <p>{t("wipeWarning")}</p>
          <Field id="wipe-password" label={t("password")}>
            <input id="wipe-password" name="password" type="password" autocomplete="current-password" required />
          </Field>
          <button type="submit" class="danger">
            {t("wipeNow")}
          </button>
        </form>
      )}
      <Alert problem={problem} />
      <h3>{t("commands")}</h3>
      <ul class="plain commands">
        {commands.map((c) => (
          <li key={c.commandId}>
            {CommandKind[c.kind]} · {CommandState[c.state]}
            {c.createdAt ? <span class="hint"> · {when(timestampDate(c.createdAt))}</span> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}

function lostMode(enabled: boolean, message: string, phone: string) {
  return create(LostModeSchema, { enabled, message, contactPhone: phone });
}

/** The track on a plain grid, north up, scaled to fit; the newest point marked. */
function Track({ points }: { points: Location[] }) {
  if (points.length === 0) return null;
  const size = 300;
  const pad = 12;
  const lats = points.map((p) => p.latitude);
  const lons = points.map((p) => p.longitude);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const span = Math.max(maxLat - minLat, maxLon - minLon, 1e-4);
  const x = (lon: number) => pad + ((lon - minLon) / span) * (size - 2 * pad);
  const y = (lat: number) => size - pad - ((lat - minLat) / span) * (size - 2 * pad);
  const ordered = [...points].sort((a, b) => Number(a.measuredAt?.seconds ?? 0n) - Number(b.measuredAt?.seconds ?? 0n));
  const line = ordered.map((p) => `${x(p.longitude).toFixed(1)},${y(p.latitude).toFixed(1)}`).join(" ");
  const newest = ordered[ordered.length - 1];
  const grid = [1, 2, 3].map((i) => (i * size) / 4);
  return (
    <svg class="track" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={t("trackLabel", { n: points.length })} data-points={points.length}>
      <rect x="0" y="0" width={size} height={size} fill="#ffffff" stroke="#c9d1da" />
      {grid.map((g) => (
        <g key={g}>
          <line x1={g} y1="0" x2={g} y2={size} stroke="#e4e9ee" />
          <line x1="0" y1={g} x2={size} y2={g} stroke="#e4e9ee" />
        </g>
      ))}
      <polyline points={line} fill="none" stroke="#0b57d0" stroke-width="2" />
      <circle cx={x(newest.longitude)} cy={y(newest.latitude)} r="5" fill="#a50e0e" />
    </svg>
  );
}
