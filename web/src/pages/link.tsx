// A share link opened by anyone, signed in or not: the file or the folder's files to download,
// the password prompt when the link has one, and "report this".
import { useEffect, useState } from "preact/hooks";
import { links } from "../api";
import { save } from "../download";
import { NodeKind, type Node } from "../gen/cumulo/blob/v1/blob_pb";
import { bytes, t } from "../i18n";
import { Alert, Field, problemOf, type Problem } from "./form";
import { Report } from "./report";
import { SharedFolder } from "./shared-folder";

const GONE = ["LINK_NOT_FOUND", "LINK_REVOKED", "LINK_EXPIRED"];

export function SharedLink({ token }: { token: string }) {
  const [root, setRoot] = useState<Node | null>(null);
  const [children, setChildren] = useState<Node[]>([]);
  const [password, setPassword] = useState("");
  const [asking, setAsking] = useState(false);
  const [gone, setGone] = useState(false);
  const [blocked, setBlocked] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [reporting, setReporting] = useState(false);

  async function open(withPassword: string) {
    setProblem(null);
    try {
      const answer = await links.openShareLink({ token, password: withPassword });
      setRoot(answer.root ?? null);
      setChildren(answer.children);
      setPassword(withPassword);
      setAsking(false);
    } catch (error) {
      const found = problemOf(error);
      if (found.reason === "LINK_PASSWORD_REQUIRED") setAsking(true);
      else if (found.reason === "CONTENT_BLOCKED" || found.reason === "LINK_TAKEN_DOWN") setBlocked(true);
      else if (found.reason && GONE.includes(found.reason)) setGone(true);
      else {
        if (found.reason === "LINK_PASSWORD_WRONG") setAsking(true);
        setProblem(found);
      }
    }
  }

  useEffect(() => void open(""), [token]);

  async function download(node: Node | null) {
    try {
      const answer = await links.getSharedDownloadUrl({ token, password, nodeId: node ? node.nodeId : "" });
      save(answer.download, (node ?? root)?.name ?? "download");
    } catch (error) {
      setProblem(problemOf(error));
    }
  }

  let body;
  if (gone) body = <p class="alert" role="alert">{t("linkGone")}</p>;
  else if (blocked) body = <p class="alert" role="alert">{t("blocked")}</p>;
  else if (asking)
    body = (
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void open(String(new FormData(e.currentTarget as HTMLFormElement).get("password")));
        }}
      >
        <p>{t("linkNeedsPassword")}</p>
        <Field id="share-password" label={t("password")}>
          <input id="share-password" name="password" type="password" autocomplete="off" required />
        </Field>
        <button type="submit" class="primary">
          {t("open")}
        </button>
      </form>
    );
  else if (!root) body = problem ? null : <p aria-busy="true">{t("loading")}</p>;
  else if (root.blocked) body = <p class="alert" role="alert">{t("blocked")}</p>;
  else if (root.kind === NodeKind.FILE)
    body = (
      <p>
        <strong>{root.name}</strong> ({bytes(Number(root.size))}){" "}
        <button type="button" class="primary" onClick={() => download(null)}>
          {t("download")}
        </button>
      </p>
    );
  else
    body = (
      <>
        <h2>{root.name}</h2>
        <SharedFolder nodes={children} label={root.name} onDownload={download} />
      </>
    );

  return (
    <section class="card" aria-labelledby="link-title">
      <h1 id="link-title">{t("sharedWithYou")}</h1>
      {body}
      <Alert problem={problem} />
      {!gone && (
        <p>
          <button type="button" class="link" aria-expanded={reporting} onClick={() => setReporting(!reporting)}>
            {t("reportThis")}
          </button>
        </p>
      )}
      {reporting && <Report link={`${window.location.origin}/s/${token}`} />}
    </section>
  );
}
