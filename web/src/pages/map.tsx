// The track on a map of the configured tile server (Leaflet, loaded only then: the first page
// load does not carry it).
import { useEffect, useRef } from "preact/hooks";
import type { Location } from "../gen/cumulo/locator/v1/locator_pb";
import { t } from "../i18n";
import "leaflet/dist/leaflet.css";

export function TrackMap({ points, tiles }: { points: Location[]; tiles: string }) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = holder.current;
    if (!element || points.length === 0) return;
    let map: { remove(): void } | null = null;
    let live = true;
    void import("leaflet").then(({ default: L }) => {
      if (!live) return;
      const ordered = [...points].sort((a, b) => Number(a.measuredAt?.seconds ?? 0n) - Number(b.measuredAt?.seconds ?? 0n));
      const line = ordered.map((p) => [p.latitude, p.longitude] as [number, number]);
      const shown = L.map(element, { attributionControl: true });
      L.tileLayer(tiles, { maxZoom: 19, attribution: "" }).addTo(shown);
      const track = L.polyline(line, { color: "#0b57d0", weight: 3 }).addTo(shown);
      L.circleMarker(line[line.length - 1], { radius: 6, color: "#a50e0e", fillOpacity: 1 }).addTo(shown);
      shown.fitBounds(track.getBounds(), { padding: [20, 20], maxZoom: 17 });
      map = shown;
    });
    return () => {
      live = false;
      map?.remove();
    };
  }, [points, tiles]);
  return <div class="map" ref={holder} role="img" aria-label={t("trackLabel", { n: points.length })} data-points={points.length} />;
}
