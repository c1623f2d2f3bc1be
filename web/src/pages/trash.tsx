// The trash: restore one item, or empty it for good.
import { useCallback, useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { blob } from "../api";
import type { Node } from "../gen/cumulo/blob/v1/blob_pb";
import { t, when } from "../i18n";
import { Alert, useCalls } from "./form";

export function Trash() {
  const [nodes, setNodes] = useState<Node[] | null>(null);
  const { problem, run } = useCalls();

  const load = useCallback(async () => {
    const found: Node[] = [];
    let pageToken = "";
    do {
      const page = await blob.listTrash({ pageSize: 1000, pageToken });
      found.push(...page.nodes);
      pageToken = page.nextPageToken;
    } while (pageToken);
    setNodes(found);
  }, []);
  useEffect(() => void run(load), [run, load]);

  const act = (action: () => Promise<unknown>) =>
    run(async () => {
      await action();
      await load();
    });

  return (
    <section aria-labelledby="trash-title">
      <h1 id="trash-title">{t("trash")}</h1>
      <Alert problem={problem} />
      {nodes === null ? (
        <p aria-busy="true">{t("loading")}</p>
      ) : nodes.length === 0 ? (
        <p>{t("trashEmpty")}</p>
      ) : (
        <>
          <button
            type="button"
            class="danger"
            onClick={() => window.confirm(t("emptyTrashConfirm")) && act(() => blob.emptyTrash({}))}
          >
            {t("emptyTrash")}
          </button>
          <ul class="plain">
            {nodes.map((node) => (
              <li key={node.nodeId}>
                {node.name}
                {node.trashedAt ? <span class="hint"> · {when(timestampDate(node.trashedAt))}</span> : null}{" "}
                <button type="button" onClick={() => act(() => blob.restore({ nodeId: node.nodeId }))} aria-label={`${t("restore")} ${node.name}`}>
                  {t("restore")}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
