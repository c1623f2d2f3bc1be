// The link in a new-session notice ("not you?"): one click ends that session, no sign-in
// needed (the link's token names the one session).
import { useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { auth } from "../api";
import { t, when } from "../i18n";
import { Alert, problemOf, type Problem } from "./form";

export function RevokeSession({ token }: { token: string }) {
  const [done, setDone] = useState<{ device: string; at: string; revoked: boolean } | null>(null);
  const [invalid, setInvalid] = useState(!token);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);

  async function end() {
    setBusy(true);
    setProblem(null);
    try {
      const answer = await auth.revokeSessionWithLink({ token });
      setDone({ device: answer.deviceName, at: answer.signedInAt ? when(timestampDate(answer.signedInAt)) : "", revoked: answer.revoked });
    } catch (error) {
      const found = problemOf(error);
      if (found.reason === "LINK_INVALID") setInvalid(true);
      else setProblem(found);
    } finally {
      setBusy(false);
    }
  }

  let body;
  if (invalid)
    body = (
      <p class="alert" role="alert">
        {t("linkInvalid")} <a href="/signin">{t("signIn")}</a>
      </p>
    );
  else if (done)
    body = (
      <p class="note" role="status">
        {t(done.revoked ? "linkSessionEnded" : "sessionEndedAlready", { device: done.device, at: done.at })} {t("changePasswordAdvice")}{" "}
        <a href="/reset">{t("setNewPassword")}</a>
      </p>
    );
  else
    body = (
      <button type="button" class="danger" onClick={end} disabled={busy}>
        {t("endThatSession")}
      </button>
    );
  return (
    <section class="card narrow" aria-labelledby="revoke-title">
      <h1 id="revoke-title">{t("revokeSessionTitle")}</h1>
      <p>{t("revokeSessionIntro")}</p>
      {body}
      <Alert problem={problem} />
    </section>
  );
}
