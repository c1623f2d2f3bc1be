// What the operator announced to everyone (maintenance windows, new terms of service), on
// every page, signed in or not: asked once when the console opens.
import { useEffect, useState } from "preact/hooks";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { lifecycle } from "../api";
import { AnnouncementKind, type Announcement } from "../gen/cumulo/lifecycle/v1/lifecycle_pb";
import { lang, t, when } from "../i18n";
import { use } from "../state";

export function Announcements() {
  const [list, setList] = useState<Announcement[]>([]);
  const language = use(lang);
  useEffect(() => {
    lifecycle.listAnnouncements({}).then(
      (answer) => setList(answer.announcements),
      () => undefined, // a banner is no reason to fail a page
    );
  }, []);
  if (list.length === 0) return null;
  return (
    <ul class="plain announcements" aria-label={t("announcements")}>
      {list.map((a) => {
        const from = a.startsAt ? when(timestampDate(a.startsAt)) : "";
        const message = language === "en" ? a.messageEn : a.messageZh;
        const text =
          a.kind === AnnouncementKind.MAINTENANCE
            ? t("maintenanceBanner", { from, until: a.endsAt ? when(timestampDate(a.endsAt)) : "" })
            : t("termsBanner", { from, version: a.reference });
        return (
          <li key={a.announcementId} class="alert" role="status">
            {text} {message}
          </li>
        );
      })}
    </ul>
  );
}
