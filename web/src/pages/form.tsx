// Pieces every form uses: a labelled field with its error, and the form-level error.
import type { ComponentChildren } from "preact";
import { useCallback, useState } from "preact/hooks";
import { t } from "../i18n";
import { fieldErrors, messageOf, reasonOf } from "../api";
import { Code, ConnectError } from "@connectrpc/connect";

export function Field(props: {
  id: string;
  label: string;
  error?: string;
  children: ComponentChildren;
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.error && (
        <p class="field-error" id={`${props.id}-error`} role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

export interface Problem {
  message: string;
  reason?: string;
  fields: Record<string, string>;
}

export function problemOf(error: unknown): Problem {
  // The services' own messages are written for people (and never hold a secret); anything
  // else is said to have gone wrong.
  const unavailable = error instanceof ConnectError && error.code === Code.Unavailable;
  const told = error instanceof ConnectError && error.rawMessage;
  return {
    message: unavailable ? t("unavailable") : told ? messageOf(error) : t("error", { message: messageOf(error) }),
    reason: reasonOf(error),
    fields: fieldErrors(error),
  };
}

export function Alert({ problem }: { problem: Problem | null }) {
  if (!problem) return null;
  return (
    <p class="alert" role="alert" data-reason={problem.reason ?? ""}>
      {problem.message}
    </p>
  );
}

/** A page's calls and what went wrong with the last one: `run(action)` clears the problem,
 * runs the action and keeps its error for the page to show; it answers whether it worked. */
export function useCalls(): { problem: Problem | null; run: (action: () => Promise<unknown>) => Promise<boolean> } {
  const [problem, setProblem] = useState<Problem | null>(null);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setProblem(null);
    try {
      await action();
      return true;
    } catch (error) {
      setProblem(problemOf(error));
      return false;
    }
  }, []);
  return { problem, run };
}
