// The link in a freeze notice: what will happen to the account, and one click to keep it.
import { useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { lifecycle } from "../api";
import { AccountState } from "../gen/cumulo/lifecycle/v1/lifecycle_pb";
import { t, when } from "../i18n";
import { Alert, problemOf, type Problem } from "./form";

interface Seen {
  state: AccountState;
  deleteAt?: Date;
}

export function Reactivate({ token }: { token: string }) {
  const [seen, setSeen] = useState<Seen | null>(null);
  const [invalid, setInvalid] = useState(false);
  const [kept, setKept] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);

  useEffect(() => {
    if (!token) {
      setInvalid(true);
      return;
    }
    lifecycle.inspectReactivationLink({ token }).then(
      (response) => setSeen({ state: response.state, deleteAt: response.deleteAt ? timestampDate(response.deleteAt) : undefined }),
      (error) => {
        const found = problemOf(error);
        if (found.reason === "LINK_INVALID" || found.fields.token) setInvalid(true);
        else setProblem(found);
      },
    );
  }, [token]);

  async function keep() {
    setBusy(true);
    setProblem(null);
    try {
      await lifecycle.reactivateWithLink({ token });
      setKept(true);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  }

  let body;
  if (kept) body = <p class="note" role="status">{t("reactivated")}</p>;
  else if (invalid)
    body = (
      <p class="alert" role="alert">
        {t("linkInvalid")} <a href="/signin">{t("signIn")}</a>
      </p>
    );
  else if (!seen) body = problem ? null : <p aria-busy="true">{t("loading")}</p>;
  else if (seen.state === AccountState.FROZEN)
    body = (
      <>
        <p class="state frozen">{t("stateFrozen", { when: seen.deleteAt ? when(seen.deleteAt) : "" })}</p>
        <button type="button" class="primary" onClick={keep} disabled={busy}>
          {t("keepAccount")}
        </button>
      </>
    );
  else if (seen.state === AccountState.ACTIVE) body = <p class="state">{t("stateActive")}</p>;
  else body = <p class="state">{t("stateDeleting")}</p>;

  return (
    <section class="card narrow" aria-labelledby="reactivate-title">
      <h1 id="reactivate-title">{t("reactivateTitle")}</h1>
      <p>{t("reactivateIntro")}</p>
      {body}
      <Alert problem={problem} />
    </section>
  );
}
