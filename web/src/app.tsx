import { useEffect } from "preact/hooks";
import { lang, setLang, t, type Lang } from "./i18n";
import { follow, location, navigate } from "./router";
import { session } from "./session";
import { use } from "./state";
import { auth } from "./api";
import { SignIn } from "./pages/signin";
import { SignUp } from "./pages/signup";
import { ResetPassword } from "./pages/reset";
import { Files } from "./pages/files";
import { Reactivate } from "./pages/reactivate";
import { SharedLink } from "./pages/link";
import { Shares } from "./pages/shares";
import { AccountPage, VerifyReminder } from "./pages/account";
import { Trash } from "./pages/trash";
import { Devices } from "./pages/devices";
import { MyCases, Queue } from "./pages/moderation";
import { Backups } from "./pages/backups";
import { Takeout } from "./pages/takeout";
import { Announcements } from "./pages/announcements";
import { RevokeSession } from "./pages/revoke-session";

export function App() {
  const where = use(location);
  use(lang);
  const signedIn = use(session.state);
  const { path } = where;

  // Pages that need no account.
  let page;
  if (path === "/reactivate") page = <Reactivate token={where.query.get("token") ?? ""} />;
  else if (path.startsWith("/s/")) page = <SharedLink token={decodeURIComponent(path.slice("/s/".length))} />;
  else if (path === "/signup") page = <SignUp />;
  else if (path === "/reset") page = <ResetPassword />;
  else if (path === "/revoke-session") page = <RevokeSession token={where.query.get("token") ?? ""} />;
  else if (!signedIn) page = <SignIn next={path === "/signin" ? "/files" : path + window.location.search} />;
  else if (path === "/" || path === "/signin") page = <Redirect to="/files" />;
  else if (path === "/files" || path.startsWith("/files/")) page = <Files folderId={path.slice("/files/".length)} />;
  else if (path === "/shares") page = <Shares />;
  else if (path === "/trash") page = <Trash />;
  else if (path === "/devices") page = <Devices />;
  else if (path === "/cases") page = <MyCases />;
  else if (path === "/backups") page = <Backups />;
  else if (path === "/moderation") page = <Queue />;
  else if (path === "/account") page = <AccountPage />;
  else if (path === "/takeout") page = <Takeout />;
  else page = <p>{t("notFound")}</p>;

  return (
    <div class="shell" onClick={follow}>
      <a class="skip" href="#main">
        {t("skipToContent")}
      </a>
      <header class="bar">
        <a class="brand" href={signedIn ? "/files" : "/signin"}>
          {t("appName")}
        </a>
        <nav aria-label="main">
          {signedIn && (
            <>
              <a href="/files">{t("files")}</a>
              <a href="/shares">{t("sharing")}</a>
              <a href="/devices">{t("devices")}</a>
              <a href="/backups">{t("backupsTitle")}</a>
              <a href="/trash">{t("trash")}</a>
              <a href="/cases">{t("myCases")}</a>
              <a href="/account">{t("account")}</a>
              {session.hasRole("moderator") && <a href="/moderation">{t("queue")}</a>}
            </>
          )}
        </nav>
        <div class="end">
          <label>
            <span class="hidden">{t("language")}</span>
            <select value={lang.get()} onChange={(e) => setLang((e.target as HTMLSelectElement).value as Lang)}>
              <option value="en">English</option>
              <option value="zh-CN">简体中文</option>
            </select>
          </label>
          {signedIn && <SignOut />}
        </div>
      </header>
      <main id="main">
        <Announcements />
        <VerifyReminder />
        {page}
      </main>
    </div>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function SignOut() {
  async function signOut() {
    // The tokens leave this browser whether or not the gateway heard of it: unreachable, the
    // session ends there when its refresh token expires.
    await auth.logout({}).catch(() => undefined);
    session.signedOut();
    navigate("/signin");
  }
  return (
    <button type="button" onClick={signOut}>
      {t("signOut")}
    </button>
  );
}
