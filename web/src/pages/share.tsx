// Sharing one file or folder: a link (with an expiry and a password if wanted; its address is
// shown once, as the service gives its token only once) or with a person by their login.
import { useState } from "preact/hooks";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { blob } from "../api";
import { CreateShareLinkRequestSchema, type Node } from "../gen/cumulo/blob/v1/blob_pb";
import { t } from "../i18n";
import { Alert, Field, useCalls } from "./form";

const DAY = 24 * 3600 * 1000;

export function linkAddress(token: string): string {
  return `${window.location.origin}/s/${token}`;
}

export function SharePanel({ node, onClose }: { node: Node; onClose: () => void }) {
  const [address, setAddress] = useState("");
  const [shared, setShared] = useState("");
  const { problem, run } = useCalls();
  const id = node.nodeId;

  async function makeLink(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const days = Number(form.get("expiry"));
    await run(async () => {
      const { link } = await blob.createShareLink(
        create(CreateShareLinkRequestSchema, {
          nodeId: id,
          expiresAt: days ? timestampFromMs(Date.now() + days * DAY) : undefined,
          password: String(form.get("password") ?? ""),
        }),
      );
      if (link) setAddress(linkAddress(link.token));
    });
  }

  async function withPerson(event: Event) {
    event.preventDefault();
    const recipient = String(new FormData(event.currentTarget as HTMLFormElement).get("recipient"));
    if (await run(() => blob.shareWithUser({ nodeId: id, recipient }))) setShared(recipient);
  }

  return (
    <div class="panel" role="group" aria-label={`${t("share")} ${node.name}`}>
      <form onSubmit={makeLink} class="inline">
        <Field id={`expiry-${id}`} label={t("expiry")}>
          <select id={`expiry-${id}`} name="expiry">
            <option value="0">{t("never")}</option>
            <option value="1">{t("days", { n: 1 })}</option>
            <option value="7">{t("days", { n: 7 })}</option>
            <option value="30">{t("days", { n: 30 })}</option>
          </select>
        </Field>
        <Field id={`link-password-${id}`} label={t("linkPassword")}>
          <input id={`link-password-${id}`} name="password" type="password" autocomplete="new-password" />
        </Field>
        <button type="submit">{t("createLink")}</button>
      </form>
      {address && (
        <p class="note" role="status">
          {t("linkReady")} <input class="address" readOnly value={address} aria-label={t("linkAddress")} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </p>
      )}
      <form onSubmit={withPerson} class="inline">
        <Field id={`recipient-${id}`} label={t("recipient")} error={problem?.fields.recipient}>
          <input id={`recipient-${id}`} name="recipient" required />
        </Field>
        <button type="submit">{t("shareWithPerson")}</button>
      </form>
      {shared && <p class="note" role="status">{t("sharedWith", { who: shared })}</p>}
      <Alert problem={problem} />
      <button type="button" onClick={onClose}>
        {t("close")}
      </button>
    </div>
  );
}
