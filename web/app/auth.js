// Signed out: sign in with the phone number, or register a relative account.

import { api } from "/static/lib/api.js";
import { h } from "/static/lib/dom.js";
import { t } from "/static/lib/i18n.js";
import { field, notice, onSubmit, signIn, signInForm, tx } from "/static/lib/ui.js";
import { view } from "/static/app/view.js";

export function authView({ onSignedIn }) {
  const signin = signInForm({ titleKey: "auth.signInTitle", loginKey: "auth.phone", loginType: "tel", onSignedIn });
  signin.id = "signin";
  const out = notice();
  const register = h(
    "form",
    { class: "card form", id: "register", aria: { labelledby: "register-title" } },
    tx("h2", "auth.registerTitle", {}, { id: "register-title" }),
    field("auth.phone", h("input", { name: "phone", type: "tel", required: true, autocomplete: "tel", inputmode: "tel", pattern: "\\+?[0-9]{6,20}" })),
    codeField(out, () => register.elements.phone, "/auth/register/code"),
    field("auth.name", h("input", { name: "name", type: "text", required: true, autocomplete: "name", maxlength: 100 })),
    field("auth.idNumber", h("input", { name: "id_number", type: "text", required: true, autocomplete: "off", minlength: 6, maxlength: 32 }), "auth.idNumberWhy"),
    field("auth.password", h("input", { name: "password", type: "password", required: true, autocomplete: "new-password", minlength: 10 })),
    out,
    h("div", { class: "actions" }, tx("button", "auth.register", {}, { type: "submit", class: "primary" })),
  );
  onSubmit(register, out, async (values) => {
    await api.post("/auth/register", {
      phone: values.phone,
      name: values.name,
      password: values.password,
      id_number: values.id_number,
      ...(values.code ? { code: values.code } : {}),
    });
    const reply = await signIn(values.phone, values.password);
    await onSignedIn(reply);
  });
  // a newcomer on a phone sees the way to register at once, not only a sign-in form with the
  // registration below the fold
  const first = register.querySelector("input");
  signin.append(
    h(
      "p",
      { class: "app-first-time" },
      tx("button", "auth.noAccount", {}, {
        type: "button",
        class: "link-button",
        id: "to-register",
        aria: { controls: "register" },
        on: {
          click: () => {
            register.scrollIntoView({ block: "start" });
            first.focus({ preventScroll: true });
          },
        },
      }),
    ),
  );
  const forgot = resetForm();
  const signinColumn = h(
    "div",
    { class: "signin-column" },
    signin,
    h(
      "p",
      {},
      tx("button", "auth.forgot", {}, {
        type: "button",
        class: "link-button",
        id: "to-reset",
        aria: { controls: "reset", expanded: "false" },
        on: {
          click: (event) => {
            forgot.hidden = !forgot.hidden;
            event.currentTarget.setAttribute("aria-expanded", String(!forgot.hidden));
            if (!forgot.hidden) forgot.querySelector("input").focus();
          },
        },
      }),
    ),
    forgot,
  );
  const el = h("div", {}, tx("h1", "auth.title"), h("div", { class: "two-col" }, signinColumn, register));
  return view(el);
}

/** The 6-digit code the phone is sent: a button that asks for it, and its box. The answer
 * is the same whatever the phone (the server never says whether it is registered). */
function codeField(out, phoneInput, path) {
  const send = tx("button", "auth.sendCode", {}, { type: "button", class: "secondary", name: "send_code" });
  send.addEventListener("click", async () => {
    const phone = phoneInput();
    if (!phone.reportValidity()) return;
    send.disabled = true;
    out.clear();
    try {
      await api.post(path, { phone: phone.value });
      out.show(t("auth.codeSent"), "ok");
    } catch (err) {
      out.error(err);
    } finally {
      send.disabled = false;
    }
  });
  const input = h("input", { name: "code", type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6 });
  const box = field("auth.code", input, "auth.codeWhy");
  box.append(send);
  return box;
}

/** Forgot the password: a code to the account's phone, then a new password (every other
 * session ends). */
function resetForm() {
  const out = notice();
  const form = h(
    "form",
    { class: "card form", id: "reset", hidden: true, aria: { labelledby: "reset-title" } },
    tx("h3", "auth.resetTitle", {}, { id: "reset-title" }),
    field("auth.phone", h("input", { name: "phone", type: "tel", required: true, autocomplete: "tel", inputmode: "tel", pattern: "\\+?[0-9]{6,20}" })),
    codeField(out, () => form.elements.phone, "/auth/reset/code"),
    field("auth.newPassword", h("input", { name: "new_password", type: "password", required: true, autocomplete: "new-password", minlength: 10 })),
    out,
    h("div", { class: "actions" }, tx("button", "auth.reset", {}, { type: "submit", class: "primary" })),
  );
  form.elements.code.required = true;
  onSubmit(form, out, async (values) => {
    await api.post("/auth/reset", { phone: values.phone, code: values.code, new_password: values.new_password });
    form.reset();
    out.show(t("auth.resetDone"), "ok");
  });
  return form;
}
