// What the gateway tells the console about itself (/config.json): the map tile server, if any.
export interface ConsoleConfig {
  mapTiles: string;
}

let loaded: Promise<ConsoleConfig> | null = null;

export function consoleConfig(): Promise<ConsoleConfig> {
  loaded ??= fetch("/config.json")
    .then((response): Promise<Partial<ConsoleConfig>> => (response.ok ? response.json() : Promise.resolve({})))
    .then((found) => ({ mapTiles: typeof found.mapTiles === "string" ? found.mapTiles : "" }))
    .catch(() => ({ mapTiles: "" }));
  return loaded;
}
