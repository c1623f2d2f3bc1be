import { useEffect, useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { auth } from "../api";
import { DateSchema, RegisterRequestSchema } from "../gen/cumulo/auth/v1/auth_pb";
import { lang, t } from "../i18n";
import { navigate } from "../router";
import { Alert, Field, problemOf, type Problem } from "./form";

const MINOR_REASONS = ["GUARDIAN_REQUIRED"];

export function SignUp() {
  const [terms, setTerms] = useState<{ version: string; text: string } | null>(null);
  const [showTerms, setShowTerms] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    auth.getTerms({}).then(
      (response) => setTerms({ version: response.version, text: response.text }),
      (error) => setProblem(problemOf(error)),
    );
  }, []);

  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const [year, month, day] = String(form.get("birth")).split("-").map(Number);
    setBusy(true);
    setProblem(null);
    try {
      await auth.register(
        create(RegisterRequestSchema, {
          email: String(form.get("email")),
          password: String(form.get("password")),
          birthDate: year ? create(DateSchema, { year, month, day }) : undefined,
          acceptedTermsVersion: form.get("terms") ? (terms?.version ?? "") : "",
          locale: lang.get(),
        }),
      );
      navigate("/signin?created=1");
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  }

  const minor = problem?.reason !== undefined && MINOR_REASONS.includes(problem.reason);
  return (
    <section class="card narrow" aria-labelledby="signup-title">
      <h1 id="signup-title">{t("signUp")}</h1>
      <form onSubmit={submit} noValidate>
        <Field id="email" label={t("email")} error={problem?.fields.email}>
          <input id="email" name="email" type="email" autocomplete="email" required />
        </Field>
        <Field id="new-password" label={t("password")} error={problem?.fields.password}>
          <input id="new-password" name="password" type="password" autocomplete="new-password" minLength={8} required />
        </Field>
        <Field id="birth" label={t("birthDate")} error={problem?.fields.birth_date}>
          <input id="birth" name="birth" type="date" required />
        </Field>
        <div class="check">
          <input id="terms" name="terms" type="checkbox" required />
          <label for="terms">{t("terms")}</label>
          <button type="button" class="link" aria-expanded={showTerms} onClick={() => setShowTerms(!showTerms)}>
            {t("showTerms")}
          </button>
        </div>
        {showTerms && terms && <pre class="terms" tabIndex={0}>{terms.text}</pre>}
        {minor ? (
          <div class="alert" role="alert" data-reason={problem?.reason}>
            <strong>{t("minorTitle")}</strong> {t("minorText")}
          </div>
        ) : (
          <Alert problem={problem} />
        )}
        <button type="submit" class="primary" disabled={busy || !terms}>
          {t("signUp")}
        </button>
      </form>
      <p>
        {t("haveAccount")} <a href="/signin">{t("signIn")}</a>
      </p>
    </section>
  );
}
