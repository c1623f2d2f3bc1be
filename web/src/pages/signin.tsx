import { useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { auth } from "../api";
import { LoginRequestSchema } from "../gen/cumulo/auth/v1/auth_pb";
import { t } from "../i18n";
import { location, navigate } from "../router";
import { session } from "../session";
import { Alert, Field, problemOf, type Problem } from "./form";

function deviceName(): string {
  const agent = navigator.userAgent;
  const browser = /Firefox\//.test(agent) ? "Firefox" : /Edg\//.test(agent) ? "Edge" : /Chrom/.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : "browser";
  return `cumulo web (${browser})`;
}

export function SignIn({ next }: { next: string }) {
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const [secondStep, setSecondStep] = useState(false);
  const created = location.get().query.get("created") === "1";
  const reset = location.get().query.get("reset") === "1";

  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    setBusy(true);
    setProblem(null);
    try {
      const response = await auth.login(
        create(LoginRequestSchema, {
          login: String(form.get("login")),
          password: String(form.get("password")),
          deviceName: deviceName(),
          secondFactor: String(form.get("second") ?? ""),
        }),
      );
      if (!response.tokens) throw new Error("no tokens");
      session.started(response.tokens);
      navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/files", { replace: true });
    } catch (error) {
      const problem = problemOf(error);
      if (problem.reason === "SECOND_FACTOR_REQUIRED") {
        setSecondStep(true); // the password was right: now the code
        return;
      }
      setProblem(problem);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card narrow" aria-labelledby="signin-title">
      <h1 id="signin-title">{t("signIn")}</h1>
      {created && <p class="note" role="status">{t("created")}</p>}
      {reset && <p class="note" role="status">{t("passwordReset")}</p>}
      <form onSubmit={submit} noValidate>
        <Field id="login" label={t("email")} error={problem?.fields.login}>
          <input id="login" name="login" type="email" autocomplete="username" required />
        </Field>
        <Field id="password" label={t("password")} error={problem?.fields.password}>
          <input id="password" name="password" type="password" autocomplete="current-password" required />
        </Field>
        {secondStep && (
          <Field id="second" label={t("secondStepCode")} error={problem?.reason === "SECOND_FACTOR_WRONG" ? problem.message : undefined}>
            <input id="second" name="second" autocomplete="one-time-code" required autoFocus />
          </Field>
        )}
        <Alert problem={problem?.reason === "SECOND_FACTOR_WRONG" ? null : problem} />
        <button type="submit" class="primary" disabled={busy}>
          {t("signIn")}
        </button>
      </form>
      <p>
        <a href="/reset">{t("forgotPassword")}</a>
      </p>
      <p>
        {t("noAccount")} <a href="/signup">{t("signUp")}</a>
      </p>
    </section>
  );
}
