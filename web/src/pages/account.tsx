// The account: its state (frozen: the exact deletion time), sessions, contacts, password,
// terms, and cancelling it with the consequences spelled out and a typed confirmation.
import { useCallback, useEffect, useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { auth, blob, lifecycle } from "../api";
import type { Plan, Purchase } from "../gen/cumulo/blob/v1/blob_pb";
import { CreateMinorAccountRequestSchema, DateSchema, type Account, type Session } from "../gen/cumulo/auth/v1/auth_pb";
import { AccountState, type Account as LifecycleAccount } from "../gen/cumulo/lifecycle/v1/lifecycle_pb";
import { bytes, lang, t, when } from "../i18n";
import { navigate } from "../router";
import { session as browserSession } from "../session";
import { signal, use } from "../state";
import { renderSVG } from "uqr";
import { Alert, Field, useCalls } from "./form";

/** Whether no contact of the signed-in account is verified (no notice reaches its owner):
 * the banner every page shows says so, and goes once one is. */
export const contactsUnverified = signal(false);

/** The reminder on every page while no contact is verified (fetched at sign-in). */
export function VerifyReminder() {
  const unverified = use(contactsUnverified);
  const signedIn = use(browserSession.state);
  useEffect(() => {
    if (!signedIn) return;
    auth.getAccount({}).then(
      (mine) => contactsUnverified.set(!!mine.account && !(mine.account.emailVerified || mine.account.phoneVerified)),
      () => undefined,
    );
  }, [signedIn]);
  if (!signedIn || !unverified) return null;
  return (
    <p class="alert verify-banner">
      {t("verifyBanner")} <a href="/account">{t("verifyNow")}</a>
    </p>
  );
}

/** Two-step sign-in: on (a code from an authenticator app at every login) or off. */
function TwoStep(props: { on: boolean; onChanged: () => void }) {
  const { problem, run } = useCalls();
  const [begun, setBegun] = useState<{ secret: string; uri: string } | null>(null);
  const [recovery, setRecovery] = useState<string[]>([]);

  async function confirmPassword(form: FormData) {
    const confirmed = await auth.confirmPassword({ password: String(form.get("password")) });
    browserSession.replaceAccess(confirmed.accessToken, confirmed.accessTokenExpiresAt);
  }

  return (
    <>
      <h2>{t("twoStepTitle")}</h2>
      <Alert problem={problem?.fields.code || problem?.fields.password ? null : problem} />
      {recovery.length > 0 && (
        <div class="note" role="status">
          <p>{t("twoStepOn")}</p>
          <p>{t("recoveryCodesSave")}</p>
          <ul class="plain recovery-codes">
            {recovery.map((code) => (
              <li key={code}>
                <code>{code}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      {props.on ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget as HTMLFormElement);
            void run(async () => {
              await confirmPassword(form);
              await auth.disableTwoStep({ code: String(form.get("code")) });
              setRecovery([]);
              props.onChanged();
            });
          }}
        >
          <p>{t("twoStepIsOn")}</p>
          <Field id="two-step-password" label={t("twoStepPassword")} error={problem?.fields.password}>
            <input id="two-step-password" name="password" type="password" autocomplete="current-password" required />
          </Field>
          <Field id="two-step-off-code" label={t("secondStepCode")} error={problem?.fields.code}>
            <input id="two-step-off-code" name="code" autocomplete="one-time-code" required />
          </Field>
          <button type="submit">{t("twoStepTurnOff")}</button>
        </form>
      ) : begun ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const code = String(new FormData(e.currentTarget as HTMLFormElement).get("code"));
            void run(async () => {
              setRecovery((await auth.confirmTwoStep({ code })).recoveryCodes);
              setBegun(null);
              props.onChanged();
            });
          }}
        >
          <p>{t("twoStepScan")}</p>
          <img class="qr" alt={t("twoStepQr")} src={`data:image/svg+xml;utf8,${encodeURIComponent(renderSVG(begun.uri))}`} width={200} height={200} />
          <p>
            {t("twoStepSecret")} <code>{begun.secret}</code>
          </p>
          <Field id="two-step-code" label={t("code")} error={problem?.fields.code}>
            <input id="two-step-code" name="code" inputMode="numeric" autocomplete="one-time-code" required />
          </Field>
          <button type="submit">{t("twoStepConfirm")}</button>
        </form>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget as HTMLFormElement);
            void run(async () => {
              await confirmPassword(form);
              const started = await auth.beginTwoStep({});
              setBegun({ secret: started.secret, uri: started.otpauthUri });
            });
          }}
        >
          <p>{t("twoStepIsOff")}</p>
          <Field id="two-step-password" label={t("twoStepPassword")} error={problem?.fields.password}>
            <input id="two-step-password" name="password" type="password" autocomplete="current-password" required />
          </Field>
          <button type="submit">{t("twoStepTurnOn")}</button>
        </form>
      )}
    </>
  );
}

/** One contact: verified, or a code to send and enter. */
function Contact(props: { channel: "email" | "phone"; value: string; verified: boolean; onVerified: () => void }) {
  const { problem, run } = useCalls();
  const [sentTo, setSentTo] = useState("");
  const label = props.channel === "email" ? t("email") : t("phone");
  if (props.verified) {
    return (
      <li>
        {label}: {props.value} <span class="verified">✓ {t("verified")}</span>
      </li>
    );
  }
  return (
    <li>
      {label}: {props.value} <span class="unverified">{t("notVerified")}</span>{" "}
      <button
        type="button"
        onClick={() => run(async () => setSentTo((await auth.sendVerificationCode({ channel: props.channel })).sentTo))}
      >
        {sentTo ? t("sendAgain") : t("sendCode")}
      </button>
      {sentTo && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            const code = String(new FormData(e.currentTarget as HTMLFormElement).get("code"));
            void run(async () => {
              await auth.verifyContact({ channel: props.channel, code });
              props.onVerified();
            });
          }}
        >
          <span role="status">{t("codeSent", { to: sentTo })}</span>
          <Field id={`${props.channel}-code`} label={t("code")} error={problem?.fields.code}>
            <input id={`${props.channel}-code`} name="code" inputMode="numeric" autocomplete="one-time-code" required />
          </Field>
          <button type="submit">{t("verify")}</button>
        </form>
      )}
      {!problem?.fields.code && <Alert problem={problem} />}
    </li>
  );
}

export function AccountPage() {
  const [account, setAccount] = useState<Account | null>(null);
  const [state, setState] = useState<LifecycleAccount | null>(null);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [currentTerms, setCurrentTerms] = useState("");
  const { problem, run } = useCalls();
  const [done, setDone] = useState("");

  const load = useCallback(async () => {
    const mine = await auth.getAccount({});
    setAccount(mine.account ?? null);
    contactsUnverified.set(!!mine.account && !(mine.account.emailVerified || mine.account.phoneVerified));
    setCurrentTerms(mine.currentTermsVersion);
    setState((await lifecycle.getAccountState({})).account ?? null);
    setSessions((await auth.listSessions({})).sessions);
  }, []);
  useEffect(() => void run(load), [run, load]);

  async function act(action: () => Promise<unknown>, message: string) {
    setDone("");
    if (await run(action)) {
      setDone(message);
      await run(load);
    }
  }

  if (!account) return problem ? <Alert problem={problem} /> : <p aria-busy="true">{t("loading")}</p>;
  const frozen = state?.state === AccountState.FROZEN;
  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">{t("account")}</h1>
      {done && <p class="note" role="status">{done}</p>}
      <Alert problem={problem} />

      <h2>{t("accountState")}</h2>
      {frozen && state?.deleteAt ? (
        <p class="alert state frozen">{t("frozenBanner", { when: when(timestampDate(state.deleteAt)) })}</p>
      ) : (
        <p class="state">
          {t("stateActive")}
          {state?.freezeAt ? ` ${t("freezesAt", { when: when(timestampDate(state.freezeAt)) })}` : ""}
        </p>
      )}
      <p>{t("signedInAs", { email: account.email || account.phone })}</p>

      <h2>{t("sessions")}</h2>
      <ul class="plain">
        {sessions.map((one) => (
          <li key={one.sessionId}>
            {one.deviceName || one.clientId}
            {one.current ? ` (${t("thisBrowser")})` : ""}
            {one.lastUsedAt ? <span class="hint"> · {when(timestampDate(one.lastUsedAt))}</span> : null}{" "}
            {!one.current && (
              <button
                type="button"
                onClick={() => act(() => auth.revokeSession({ sessionId: one.sessionId }), t("sessionEnded"))}
                aria-label={`${t("endSession")} ${one.deviceName}`}
              >
                {t("endSession")}
              </button>
            )}
          </li>
        ))}
      </ul>

      <h2>{t("contacts")}</h2>
      <ul class="plain contacts">
        {account.email && <Contact channel="email" value={account.email} verified={account.emailVerified} onVerified={() => act(load, t("contactVerified"))} />}
        {account.phone && <Contact channel="phone" value={account.phone} verified={account.phoneVerified} onVerified={() => act(load, t("contactVerified"))} />}
      </ul>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const element = e.currentTarget as HTMLFormElement;
          const form = new FormData(element);
          const email = String(form.get("email") ?? "");
          const phone = String(form.get("phone") ?? "");
          const updateMask = [email !== account.email ? "email" : "", phone !== account.phone ? "phone" : ""].filter(Boolean);
          void act(async () => {
            // A contact changes only with the password entered now: a session left open is not enough.
            const confirmed = await auth.confirmPassword({ password: String(form.get("password")) });
            browserSession.replaceAccess(confirmed.accessToken, confirmed.accessTokenExpiresAt);
            if (updateMask.length) await auth.updateContacts({ email, phone, updateMask });
            (element.querySelector("#contact-password") as HTMLInputElement).value = "";
          }, t("contactsSaved"));
        }}
      >
        <Field id="email" label={t("email")} error={problem?.fields.email}>
          <input id="email" name="email" type="email" autocomplete="email" defaultValue={account.email} />
        </Field>
        <Field id="phone" label={t("phone")} error={problem?.fields.phone}>
          <input id="phone" name="phone" type="tel" autocomplete="tel" defaultValue={account.phone} />
        </Field>
        <Field id="contact-password" label={t("passwordToChange")} error={problem?.fields.password}>
          <input id="contact-password" name="password" type="password" autocomplete="current-password" required />
        </Field>
        <button type="submit">{t("save")}</button>
      </form>

      <TwoStep on={account.twoStep} onChanged={() => run(load)} />

      <h2>{t("changePassword")}</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const element = e.currentTarget as HTMLFormElement;
          const form = new FormData(element);
          void act(
            () => auth.changePassword({ currentPassword: String(form.get("current")), newPassword: String(form.get("new")) }).then(() => element.reset()),
            t("passwordChanged"),
          );
        }}
      >
        <Field id="current-password" label={t("currentPassword")} error={problem?.fields.current_password}>
          <input id="current-password" name="current" type="password" autocomplete="current-password" required />
        </Field>
        <Field id="new-password" label={t("newPassword")} error={problem?.fields.new_password}>
          <input id="new-password" name="new" type="password" autocomplete="new-password" required />
        </Field>
        <button type="submit">{t("changePassword")}</button>
      </form>

      <h2>{t("termsTitle")}</h2>
      <p>
        {t("termsAccepted", { version: account.acceptedTermsVersion })}{" "}
        {currentTerms && currentTerms !== account.acceptedTermsVersion && (
          <button type="button" onClick={() => act(() => auth.acceptTerms({ termsVersion: currentTerms }), t("saved"))}>
            {t("acceptNewTerms", { version: currentTerms })}
          </button>
        )}
      </p>

      <Plans />

      {!account.minor && <Family />}

      <Cancel email={account.email} />
    </section>
  );
}

/** Storage: what the account has bought (and until when) beside the plans on offer. */
function Plans() {
  const [plans, setPlans] = useState<Plan[]>([]);
  const [purchases, setPurchases] = useState<Purchase[]>([]);
  const { problem, run } = useCalls();
  useEffect(() => {
    void run(async () => {
      setPlans((await blob.listPlans({})).plans);
      setPurchases((await blob.listPurchases({})).purchases);
    });
  }, [run]);
  const now = Date.now();
  const current = purchases.filter((p) => !p.endsAt || timestampDate(p.endsAt).getTime() > now);
  const price = (minor: bigint, currency: string) =>
    new Intl.NumberFormat(lang.get(), { style: "currency", currency: currency || "CNY" }).format(Number(minor) / 100);
  return (
    <>
      <h2>{t("storagePlan")}</h2>
      <Alert problem={problem} />
      {current.length === 0 ? (
        <p>{t("freePlan")}</p>
      ) : (
        <ul class="plain">
          {current.map((p) => (
            <li key={p.purchaseId}>
              {plans.find((plan) => plan.planId === p.planId)?.name ?? p.planId} · {bytes(Number(p.bytes))}
              {p.endsAt ? ` · ${t("until", { when: when(timestampDate(p.endsAt)) })}` : ""}
            </li>
          ))}
        </ul>
      )}
      <ul class="plain plans">
        {plans.map((plan) => (
          <li key={plan.planId}>
            {plan.name}: {bytes(Number(plan.bytes))} · {price(plan.priceMinorUnits, plan.currency)} / {t("days", { n: plan.periodDays })}
            {plan.next && (
              <p class="hint" data-plan={plan.planId}>
                {t("newPrice", {
                  price: price(plan.next.priceMinorUnits, plan.next.currency),
                  days: plan.next.periodDays,
                  when: plan.next.appliesAt ? when(timestampDate(plan.next.appliesAt)) : "",
                })}{" "}
                {plan.boughtPriceVersion > 0 && plan.acceptedPriceVersion < plan.next.priceVersion ? (
                  <>
                    {t("renewalsKeepPrice")}{" "}
                    <button
                      type="button"
                      onClick={() =>
                        void run(async () => {
                          await blob.acceptPrice({ planId: plan.planId, priceVersion: plan.next!.priceVersion });
                          setPlans((await blob.listPlans({})).plans);
                        })
                      }
                    >
                      {t("acceptNewPrice")}
                    </button>
                  </>
                ) : plan.acceptedPriceVersion >= plan.next.priceVersion ? (
                  t("newPriceAccepted")
                ) : null}
              </p>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}

/** A guardian creates a child's account (a minor cannot sign up alone) and stays responsible. */
function Family() {
  const { problem, run } = useCalls();
  const [made, setMade] = useState("");

  async function submit(event: Event) {
    event.preventDefault();
    const element = event.currentTarget as HTMLFormElement;
    const form = new FormData(element);
    const [year, month, day] = String(form.get("birth")).split("-").map(Number);
    await run(async () => {
      const answer = await auth.createMinorAccount(
        create(CreateMinorAccountRequestSchema, {
          email: String(form.get("email")),
          password: String(form.get("password")),
          birthDate: year ? create(DateSchema, { year, month, day }) : undefined,
          guardianConsent: form.get("consent") === "on",
        }),
      );
      setMade(answer.account?.email ?? "");
      element.reset();
    });
  }

  return (
    <>
      <h2 id="family">{t("family")}</h2>
      <p>{t("familyText")}</p>
      {made && <p class="note" role="status">{t("childCreated", { email: made })}</p>}
      <form onSubmit={submit}>
        <Field id="child-email" label={t("childEmail")} error={problem?.fields.email}>
          <input id="child-email" name="email" type="email" autocomplete="off" required />
        </Field>
        <Field id="child-password" label={t("childPassword")} error={problem?.fields.password}>
          <input id="child-password" name="password" type="password" autocomplete="new-password" required />
        </Field>
        <Field id="child-birth" label={t("birthDate")} error={problem?.fields.birth_date}>
          <input id="child-birth" name="birth" type="date" required />
        </Field>
        <div class="check">
          <input id="child-consent" name="consent" type="checkbox" required />
          <label for="child-consent">{t("guardianConsent")}</label>
        </div>
        <Alert problem={problem} />
        <button type="submit">{t("createChild")}</button>
      </form>
    </>
  );
}

function Cancel({ email }: { email: string }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const { problem, run } = useCalls();
  const phrase = t("cancelPhrase");

  async function cancel(event: Event) {
    event.preventDefault();
    const password = String(new FormData(event.currentTarget as HTMLFormElement).get("password"));
    if (await run(() => auth.cancelAccount({ password }))) {
      browserSession.signedOut();
      navigate("/signin");
    }
  }

  return (
    <>
      <h2>{t("takeoutTitle")}</h2>
      <p>
        <a href="/takeout">{t("startExport")}</a>
      </p>
      <h2>{t("cancelTitle")}</h2>
      {!open ? (
        <button type="button" class="danger" onClick={() => setOpen(true)}>
          {t("cancelTitle")}
        </button>
      ) : (
        <form onSubmit={cancel} class="danger-zone">
          <p>{t("cancelConsequences", { email })}</p>
          <Field id="cancel-confirm" label={t("cancelType", { phrase })}>
            <input id="cancel-confirm" value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} autocomplete="off" />
          </Field>
          <Field id="cancel-password" label={t("password")} error={problem?.fields.password}>
            <input id="cancel-password" name="password" type="password" autocomplete="current-password" required />
          </Field>
          <Alert problem={problem} />
          <button type="submit" class="danger" disabled={typed.trim() !== phrase}>
            {t("cancelNow")}
          </button>{" "}
          <button type="button" onClick={() => setOpen(false)}>
            {t("cancel")}
          </button>
        </form>
      )}
    </>
  );
}
