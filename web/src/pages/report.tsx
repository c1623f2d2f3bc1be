// The complaint form for a shared link: anyone may report it; a copyright claim asks for the
// elements a notice needs (rights holder, work, statements, signature).
import { useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { complaints } from "../api";
import { Category, CopyrightClaimSchema, FileComplaintRequestSchema, TargetKind, TargetSchema } from "../gen/cumulo/moderation/v1/moderation_pb";
import { t, type Key } from "../i18n";
import { Alert, Field, problemOf, type Problem } from "./form";

const CATEGORIES: [Category, Key][] = [
  [Category.ILLEGAL, "catIllegal"],
  [Category.HARMFUL, "catHarmful"],
  [Category.PRIVACY, "catPrivacy"],
  [Category.SPAM, "catSpam"],
  [Category.COPYRIGHT, "catCopyright"],
  [Category.OTHER, "catOther"],
];

export function Report({ link }: { link: string }) {
  const [category, setCategory] = useState(Category.ILLEGAL);
  const [receipt, setReceipt] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? "");
    setBusy(true);
    setProblem(null);
    try {
      const answer = await complaints.fileComplaint(
        create(FileComplaintRequestSchema, {
          target: create(TargetSchema, { kind: TargetKind.LINK, link }),
          category,
          description: text("description"),
          contactAddress: text("contact"),
          copyright:
            category === Category.COPYRIGHT
              ? create(CopyrightClaimSchema, {
                  rightsHolder: text("holder"),
                  rightsHolderContact: text("contact"),
                  work: text("work"),
                  location: link,
                  goodFaithStatement: form.get("goodFaith") === "on",
                  accuracyStatement: form.get("accuracy") === "on",
                  signature: text("signature"),
                })
              : undefined,
        }),
      );
      setReceipt(answer.receipt);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  }

  if (receipt)
    return (
      <p class="note" role="status">
        {t("reported")} <code>{receipt}</code>
      </p>
    );
  const f = problem?.fields ?? {};
  return (
    <form class="report" onSubmit={submit} aria-label={t("reportThis")}>
      <Field id="category" label={t("category")} error={f.category}>
        <select id="category" value={String(category)} onChange={(e) => setCategory(Number((e.target as HTMLSelectElement).value))}>
          {CATEGORIES.map(([value, key]) => (
            <option key={value} value={String(value)}>
              {t(key)}
            </option>
          ))}
        </select>
      </Field>
      <Field id="description" label={t("description")} error={f.description}>
        <textarea id="description" name="description" required rows={3} />
      </Field>
      <Field id="contact" label={t("contact")} error={f.contact_address}>
        <input id="contact" name="contact" type="email" required />
      </Field>
      {category === Category.COPYRIGHT && (
        <>
          <Field id="holder" label={t("rightsHolder")} error={f["copyright.rights_holder"]}>
            <input id="holder" name="holder" required />
          </Field>
          <Field id="work" label={t("work")} error={f["copyright.work"]}>
            <input id="work" name="work" required />
          </Field>
          <div class="check">
            <input id="goodFaith" name="goodFaith" type="checkbox" required />
            <label for="goodFaith">{t("goodFaith")}</label>
          </div>
          <div class="check">
            <input id="accuracy" name="accuracy" type="checkbox" required />
            <label for="accuracy">{t("accuracy")}</label>
          </div>
          <Field id="signature" label={t("signature")} error={f["copyright.signature"]}>
            <input id="signature" name="signature" required />
          </Field>
        </>
      )}
      <Alert problem={problem} />
      <button type="submit" class="primary" disabled={busy}>
        {t("sendReport")}
      </button>
    </form>
  );
}
