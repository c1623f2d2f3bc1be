// What the person shares (links, people) and what others share with them.
import { useCallback, useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { blob } from "../api";
import { save } from "../download";
import { NodeKind, type Node, type ShareLink, type UserShare } from "../gen/cumulo/blob/v1/blob_pb";
import { t, when } from "../i18n";
import { Alert, useCalls } from "./form";
import { SharedFolder } from "./shared-folder";

export function Shares() {
  const [links, setLinks] = useState<ShareLink[] | null>(null);
  const [mine, setMine] = useState<UserShare[]>([]);
  const [withMe, setWithMe] = useState<UserShare[]>([]);
  const [opened, setOpened] = useState<{ share: UserShare; nodes: Node[] } | null>(null);
  const { problem, run } = useCalls();

  const load = useCallback(async () => {
    setLinks((await blob.listShareLinks({})).links);
    setMine((await blob.listUserShares({})).shares);
    setWithMe((await blob.listSharedWithMe({})).shares);
  }, []);
  useEffect(() => void run(load), [run, load]);

  const act = (action: () => Promise<unknown>) =>
    run(async () => {
      await action();
      await load();
    });

  const open = (share: UserShare) =>
    run(async () => {
      const answer = await blob.openSharedWithMe({ shareId: share.shareId });
      const root = answer.root;
      if (root && root.kind === NodeKind.FILE) {
        save((await blob.getSharedWithMeDownloadUrl({ shareId: share.shareId })).download, root.name);
      } else {
        setOpened({ share, nodes: answer.children });
      }
    });

  const fetchChild = (share: UserShare, node: Node) =>
    run(async () => save((await blob.getSharedWithMeDownloadUrl({ shareId: share.shareId, nodeId: node.nodeId })).download, node.name));

  return (
    <section aria-labelledby="shares-title">
      <h1 id="shares-title">{t("sharing")}</h1>
      <Alert problem={problem} />
      <h2>{t("myLinks")}</h2>
      {links === null ? (
        <p aria-busy="true">{t("loading")}</p>
      ) : links.length === 0 ? (
        <p>{t("noLinks")}</p>
      ) : (
        <ul class="plain">
          {links.map((link) => (
            <li key={link.linkId}>
              <span>{link.name}</span>{" "}
              <span class="hint">
                {link.expiresAt ? t("expires", { when: when(timestampDate(link.expiresAt)) }) : t("noExpiry")}
                {link.passwordProtected ? ` · ${t("withPassword")}` : ""}
              </span>{" "}
              <button type="button" onClick={() => act(() => blob.revokeShareLink({ linkId: link.linkId }))} aria-label={`${t("revoke")} ${link.name}`}>
                {t("revoke")}
              </button>
            </li>
          ))}
        </ul>
      )}
      <h2>{t("sharedByMe")}</h2>
      <ul class="plain">
        {mine.map((share) => (
          <li key={share.shareId}>
            {share.name} → {share.recipient}{" "}
            <button type="button" onClick={() => act(() => blob.revokeUserShare({ shareId: share.shareId }))} aria-label={`${t("revoke")} ${share.name} ${share.recipient}`}>
              {t("revoke")}
            </button>
          </li>
        ))}
      </ul>
      <h2>{t("sharedWithMe")}</h2>
      {withMe.length === 0 ? (
        <p>{t("nothingShared")}</p>
      ) : (
        <ul class="plain">
          {withMe.map((share) => (
            <li key={share.shareId}>
              <button type="button" class="link" onClick={() => open(share)}>
                {share.name}
              </button>
            </li>
          ))}
        </ul>
      )}
      {opened && (
        <SharedFolder nodes={opened.nodes} label={opened.share.name} onDownload={(node) => fetchChild(opened.share, node)} />
      )}
    </section>
  );
}
