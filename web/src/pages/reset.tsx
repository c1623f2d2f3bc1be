// A forgotten password: a code to a verified e-mail address or phone number, then a new
// password. The first answer is the same whether or not the address has an account.
import { useState } from "preact/hooks";
import { auth } from "../api";
import { t } from "../i18n";
import { navigate } from "../router";
import { Alert, Field, useCalls } from "./form";

export function ResetPassword() {
  const { problem, run } = useCalls();
  const [login, setLogin] = useState("");

  return (
    <section class="card narrow" aria-labelledby="reset-title">
      <h1 id="reset-title">{t("resetTitle")}</h1>
      {!login ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const typed = String(new FormData(e.currentTarget as HTMLFormElement).get("login"));
            void run(async () => {
              await auth.startPasswordReset({ login: typed });
              setLogin(typed);
            });
          }}
          noValidate
        >
          <p>{t("resetExplain")}</p>
          <Field id="login" label={t("emailOrPhone")} error={problem?.fields.login}>
            <input id="login" name="login" autocomplete="username" required />
          </Field>
          <Alert problem={problem?.fields.login ? null : problem} />
          <button type="submit" class="primary">
            {t("sendCode")}
          </button>
        </form>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget as HTMLFormElement);
            void run(async () => {
              await auth.resetPassword({ login, code: String(form.get("code")), newPassword: String(form.get("new")) });
              navigate("/signin?reset=1", { replace: true });
            });
          }}
          noValidate
        >
          <p role="status">{t("resetSent", { login })}</p>
          <Field id="code" label={t("code")} error={problem?.fields.code}>
            <input id="code" name="code" inputMode="numeric" autocomplete="one-time-code" required />
          </Field>
          <Field id="new-password" label={t("newPassword")} error={problem?.fields.new_password}>
            <input id="new-password" name="new" type="password" autocomplete="new-password" required />
          </Field>
          <Alert problem={problem?.fields.code || problem?.fields.new_password ? null : problem} />
          <button type="submit" class="primary">
            {t("setPassword")}
          </button>
        </form>
      )}
    </section>
  );
}
