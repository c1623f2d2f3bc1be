// A shared folder's files, each with its download (the link page and "shared with me").
import { NodeKind, type Node } from "../gen/cumulo/blob/v1/blob_pb";
import { bytes, t } from "../i18n";

export function SharedFolder({ nodes, label, onDownload }: { nodes: Node[]; label: string; onDownload: (node: Node) => unknown }) {
  return (
    <table class="listing" aria-label={label}>
      <tbody>
        {nodes.map((node) => (
          <tr key={node.nodeId}>
            <td>{node.name}</td>
            <td>{node.kind === NodeKind.FILE ? bytes(Number(node.size)) : ""}</td>
            <td>
              {node.kind === NodeKind.FILE && !node.blocked && (
                <button type="button" onClick={() => onDownload(node)} aria-label={`${t("download")} ${node.name}`}>
                  {t("download")}
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
