// Checks CloudNativePG objects (postgresql.cnpg.io/v1 Cluster, ScheduledBackup) against the
// validators @kubernetes-models/cloudnative-pg generates from CloudNativePG's API types (its
// published CRD is ~400 KB: the model stands in for it here).
//
// Reads a JSON array of objects on standard input; prints a JSON array with one entry per
// object: {kind, name, errors: [...]}, errors empty when the object is valid.
//
// The generated validators check types, enums and required fields but let unknown fields pass
// (the API server prunes those, or refuses them with strict field validation). So the object
// is handed over wrapped in proxies that note every field the validator looks at: a field it
// never looked at is one the schema does not know (a misspelling), reported as an error. A map
// (labels, PostgreSQL parameters) is one whose keys the validator enumerated: any key is fine.
import { Cluster, ScheduledBackup } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1";

const MODELS = { "postgresql.cnpg.io/v1/Cluster": Cluster, "postgresql.cnpg.io/v1/ScheduledBackup": ScheduledBackup };
// Every object's metadata is the API server's (ObjectMeta), whatever the model says of it.
const OPAQUE = new Set(["/metadata"]);

function watched(value, path, seen, enumerated) {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string") (seen.get(path) ?? seen.set(path, new Set()).get(path)).add(key);
      const inner = Reflect.get(target, key, receiver);
      return typeof key === "string" && Object.hasOwn(target, key) ? watched(inner, `${path}/${key}`, seen, enumerated) : inner;
    },
    ownKeys(target) {
      enumerated.add(path);
      return Reflect.ownKeys(target);
    },
  });
}

function unknownFields(value, path, seen, enumerated, found) {
  if (value === null || typeof value !== "object" || OPAQUE.has(path)) return;
  if (!Array.isArray(value) && !enumerated.has(path)) {
    const looked = seen.get(path) ?? new Set();
    for (const key of Object.keys(value)) if (!looked.has(key)) found.push(`${path}/${key}: unknown field`);
  }
  for (const [key, inner] of Object.entries(value)) unknownFields(inner, `${path}/${key}`, seen, enumerated, found);
}

function check(object) {
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (Model === undefined) return [`no model for ${object.apiVersion} ${object.kind}`];
  const errors = [];
  const seen = new Map();
  const enumerated = new Set();
  try {
    // The model's validate on the object itself (a model instance would be a deep copy).
    Model.prototype.validate.call(watched(object, "", seen, enumerated));
  } catch (error) {
    errors.push(String(error.message ?? error));
  }
  unknownFields(object, "", seen, enumerated, errors);
  return errors;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = objects.map((object) => ({ kind: object.kind, name: object.metadata?.name ?? "", errors: check(object) }));
process.stdout.write(JSON.stringify(results));
