// Signed out: sign in with the phone number, or register a relative account.

import { api } from "/static/lib/api.js";
import { h } from "/static/lib/dom.js";
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
  const el = h("div", {}, tx("h1", "auth.title"), h("div", { class: "two-col" }, signin, register));
  return view(el);
}
