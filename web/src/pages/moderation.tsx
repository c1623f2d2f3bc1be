// Moderators (role "moderator"): the queue, a case with its complaints and audit trail, claim
// and decide. Owners: "my cases" (decisions about their content) and the counter-notice.
import { useCallback, useEffect, useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { complaints, moderation } from "../api";
import {
  CaseState,
  Category,
  Decision,
  DecideCaseRequestSchema,
  FileCounterNoticeRequestSchema,
  type CaseSummary,
  type GetCaseResponse,
} from "../gen/cumulo/moderation/v1/moderation_pb";
import { t, when } from "../i18n";
import { Alert, Field, useCalls } from "./form";

function summary(one: CaseSummary): string {
  return `${Category[one.category] ?? ""} · ${CaseState[one.state]}${one.decision ? ` · ${Decision[one.decision]}` : ""}`;
}

export function Queue() {
  const [cases, setCases] = useState<CaseSummary[] | null>(null);
  const [open, setOpen] = useState("");
  const { problem, run } = useCalls();

  const load = useCallback(async () => setCases((await moderation.listQueue({ pageSize: 100 })).cases), []);
  useEffect(() => void run(load), [run, load]);

  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title">{t("queue")}</h1>
      <Alert problem={problem} />
      {cases === null ? (
        !problem && <p aria-busy="true">{t("loading")}</p>
      ) : cases.length === 0 ? (
        <p>{t("queueEmpty")}</p>
      ) : (
        <ul class="plain">
          {cases.map((one) => (
            <li key={one.caseId}>
              <button type="button" class="link" aria-expanded={open === one.caseId} onClick={() => setOpen(open === one.caseId ? "" : one.caseId)}>
                {t("caseOf", { id: one.caseId.slice(0, 8) })}
              </button>{" "}
              <span class="hint">
                {summary(one)} · {t("complaintsCount", { n: one.complaints })}
                {one.createdAt ? ` · ${when(timestampDate(one.createdAt))}` : ""}
              </span>
              {open === one.caseId && <CaseView caseId={one.caseId} changed={() => run(load)} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function CaseView({ caseId, changed }: { caseId: string; changed: () => Promise<unknown> }) {
  const [shown, setShown] = useState<GetCaseResponse | null>(null);
  const { problem, run } = useCalls();

  const load = useCallback(async () => setShown(await moderation.getCase({ caseId })), [caseId]);
  useEffect(() => void run(load), [run, load]);

  const act = async (action: () => Promise<unknown>) => {
    if (await run(action)) {
      await run(load);
      await changed();
    }
  };

  if (!shown?.case) return problem ? <Alert problem={problem} /> : <p aria-busy="true">{t("loading")}</p>;
  const one = shown.case;
  return (
    <div class="panel" role="region" aria-label={t("caseOf", { id: caseId.slice(0, 8) })}>
      <p>{summary(one)}</p>
      <h3>{t("complaintsTitle")}</h3>
      <ul class="plain">
        {shown.complaints.map((c) => (
          <li key={c.complaintId}>
            {Category[c.category]}: {c.description}
            {c.copyright ? ` (${c.copyright.rightsHolder}: ${c.copyright.work})` : ""}
          </li>
        ))}
      </ul>
      <h3>{t("auditTitle")}</h3>
      <ul class="plain audit">
        {shown.audit.map((a) => (
          <li key={String(a.auditId)}>
            {a.at ? when(timestampDate(a.at)) : ""} · {a.action} {a.reason ? `· ${a.reason}` : ""}
          </li>
        ))}
      </ul>
      {one.state !== CaseState.DECIDED && (
        <>
          <button type="button" onClick={() => act(() => moderation.claimCase({ caseId, takeOver: one.state === CaseState.CLAIMED }))}>
            {t("claim")}
          </button>
          <form
            class="inline"
            onSubmit={(e) => {
              e.preventDefault();
              const form = new FormData(e.currentTarget as HTMLFormElement);
              void act(() =>
                moderation.decideCase(
                  create(DecideCaseRequestSchema, { caseId, decision: Number(form.get("decision")) as Decision, reason: String(form.get("reason")) }),
                ),
              );
            }}
          >
            <Field id={`decision-${caseId}`} label={t("decision")}>
              <select id={`decision-${caseId}`} name="decision">
                {[Decision.DISMISS, Decision.BLOCK, Decision.DELETE, Decision.WARN].map((d) => (
                  <option key={d} value={String(d)}>
                    {Decision[d]}
                  </option>
                ))}
              </select>
            </Field>
            <Field id={`reason-${caseId}`} label={t("decisionReason")}>
              <input id={`reason-${caseId}`} name="reason" required />
            </Field>
            <button type="submit" class="primary">
              {t("decide")}
            </button>
          </form>
        </>
      )}
      <Alert problem={problem} />
    </div>
  );
}

export function MyCases() {
  const [cases, setCases] = useState<CaseSummary[] | null>(null);
  const { problem, run } = useCalls();
  const [disputing, setDisputing] = useState("");
  const [sent, setSent] = useState("");

  const load = useCallback(async () => setCases((await complaints.listMyCases({})).cases), []);
  useEffect(() => void run(load), [run, load]);

  async function dispute(event: Event, caseId: string) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    await run(async () => {
      await complaints.fileCounterNotice(
        create(FileCounterNoticeRequestSchema, {
          caseId,
          statement: String(form.get("statement")),
          name: String(form.get("name")),
          contact: String(form.get("contact")),
          consentToJurisdiction: form.get("consent") === "on",
          goodFaithStatement: form.get("goodFaith") === "on",
        }),
      );
      setSent(caseId);
      setDisputing("");
      await load();
    });
  }

  return (
    <section aria-labelledby="cases-title">
      <h1 id="cases-title">{t("myCases")}</h1>
      <Alert problem={problem} />
      {sent && <p class="note" role="status">{t("counterNoticeSent")}</p>}
      {cases === null ? (
        !problem && <p aria-busy="true">{t("loading")}</p>
      ) : cases.length === 0 ? (
        <p>{t("noCases")}</p>
      ) : (
        <ul class="plain">
          {cases.map((one) => (
            <li key={one.caseId}>
              {summary(one)}
              {one.reason ? ` · ${one.reason}` : ""}{" "}
              {one.category === Category.COPYRIGHT && one.decision === Decision.BLOCK ? (
                <button type="button" onClick={() => setDisputing(disputing === one.caseId ? "" : one.caseId)} aria-expanded={disputing === one.caseId}>
                  {t("dispute")}
                </button>
              ) : null}
              {disputing === one.caseId && (
                <form onSubmit={(e) => dispute(e, one.caseId)} class="panel">
                  <Field id="statement" label={t("counterStatement")}>
                    <textarea id="statement" name="statement" required rows={3} />
                  </Field>
                  <Field id="cn-name" label={t("signature")}>
                    <input id="cn-name" name="name" required />
                  </Field>
                  <Field id="cn-contact" label={t("contact")}>
                    <input id="cn-contact" name="contact" required />
                  </Field>
                  <div class="check">
                    <input id="consent" name="consent" type="checkbox" required />
                    <label for="consent">{t("consentJurisdiction")}</label>
                  </div>
                  <div class="check">
                    <input id="cn-good-faith" name="goodFaith" type="checkbox" required />
                    <label for="cn-good-faith">{t("counterGoodFaith")}</label>
                  </div>
                  <button type="submit" class="primary">
                    {t("sendCounterNotice")}
                  </button>
                </form>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
