// The bureau's console (/admin): the admin signs in and keeps the register of every prison
// (add an inmate, import a prison's export with a dry run first, transfer, release, archive),
// the staff accounts (create; disable, enable, reset a password, change prisons), the prisons,
// the bureau's figures and the keyword lists of the review. Text only (web/lib/dom.js); every
// change is audited server-side.

import { api, onSignedOut } from "/static/lib/api.js";
import { $, clear, h, replace, show, formValues } from "/static/lib/dom.js";
import { t, errorText, localeSwitcher, onLocaleChange, formatDuration } from "/static/lib/i18n.js";
import { signOut } from "/static/lib/ui.js";
import { signIn, startI18n, tabs, toast, toastError } from "/static/console/staff.js";
import { loadEscalated } from "/static/admin/escalated.js";
import { categoryLabel } from "/static/console/flags.js";
import { CommentQueue } from "/static/console/comments.js";

startI18n("admin.title");
const me = await signIn(["admin"]);
show($("#desk"), true);
$("#locale-slot").append(localeSwitcher(h));
$("#who").textContent = me.user.name;
const out = $("#sign-out");
show(out, true);
out.addEventListener("click", async () => {
  await signOut().catch(() => null);
  location.reload();
});
onSignedOut(() => location.reload());

let prisons = [];
const prisonName = (id) => {
  const found = prisons.find((p) => p.id === id);
  return found ? found.name : `#${id}`;
};

function head(...keys) {
  return h("thead", {}, h("tr", {}, keys.map((key) => h("th", { scope: "col" }, t(key)))));
}

/** A button that asks once more before acting ("click again to confirm"). */
function confirmButton(key, action) {
  const button = h("button", { type: "button", data: { action: key } }, t(key));
  button.addEventListener("click", async () => {
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = t("admin.confirm", { what: t(key) });
      return;
    }
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      toastError(err);
      button.disabled = false;
    }
  });
  return button;
}

// -- prisons ------------------------------------------------------------------------------------

async function loadPrisons() {
  prisons = (await api.get("/admin/prisons")).prisons;
  const table = $("#prisons-table");
  replace(table, 
    head("admin.prisons.code", "admin.prisons.name", "admin.prisons.city"),
    h("tbody", {}, prisons.map((p) => h("tr", { data: { prison: p.id } }, h("td", {}, p.code), h("td", {}, p.name), h("td", {}, p.city)))),
  );
  const pick = $("#inmate-prison");
  const chosen = pick.value;
  replace(pick, prisons.map((p) => h("option", { value: p.id }, `${p.name} (${p.code})`)));
  if (chosen && prisons.some((p) => String(p.id) === chosen)) pick.value = chosen;
  renderChoices($("#staff-prisons"), "prison_ids", []);
}

$("#prison-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const made = await api.post("/admin/prisons", formValues(form));
    form.reset();
    toast(t("admin.prisons.created", { name: made.name }));
    await loadPrisons();
  } catch (err) {
    toastError(err);
  }
});

// -- staff --------------------------------------------------------------------------------------

function renderChoices(box, name, checked) {
  replace(box, 
    prisons.map((p) =>
      h("label", {}, h("input", { type: "checkbox", name, value: p.id, checked: checked.includes(p.id) }), p.name),
    ),
  );
}

const chosenPrisons = (form) =>
  [...form.querySelectorAll('input[type="checkbox"]:checked')].map((box) => Number(box.value));

let staff = [];
let editing = null;

async function loadStaff() {
  const role = $("#staff-role").value;
  const listed = role
    ? (await api.get("/admin/users", { role })).users
    : (await Promise.all(["officer", "supervisor", "admin"].map((r) => api.get("/admin/users", { role: r })))).flatMap((a) => a.users);
  staff = listed.sort((a, b) => a.id - b.id);
  const table = $("#staff-table");
  replace(table, 
    head("admin.staff.login", "admin.staff.name", "admin.staff.role", "admin.staff.prisons", "admin.staff.state", "admin.actions"),
    h(
      "tbody",
      {},
      staff.map((u) =>
        h(
          "tr",
          { data: { user: u.id, login: u.login } },
          h("td", {}, u.login),
          h("td", {}, u.name),
          h("td", {}, t(`role.${u.role}`)),
          h("td", {}, u.prison_ids.map(prisonName).join(t("common.listSeparator"))),
          h("td", { class: u.disabled ? "status-off" : "" }, t(u.disabled ? "admin.staff.disabled" : "admin.staff.enabled")),
          h("td", { class: "actions-cell" }, h("button", { type: "button", on: { click: () => edit(u) } }, t("admin.staff.manage"))),
        ),
      ),
    ),
  );
  if (editing) {
    const again = staff.find((u) => u.id === editing.id);
    if (again) edit(again);
  }
}

function edit(user) {
  editing = user;
  const box = $("#user-editor");
  show(box, true);
  box.dataset.user = String(user.id);
  $("#user-editor-title").textContent = `${user.name} (${user.login})`;
  show($("#user-disable"), !user.disabled);
  show($("#user-enable"), Boolean(user.disabled));
  show($("#user-prisons"), user.role !== "admin");
  renderChoices($("#user-prisons-choices"), "prison_ids", user.prison_ids);
  show($("#user-profile"), user.role === "supervisor");
  if (user.role === "supervisor") loadProfile(user).catch(toastError);
}

// A supervisor's public profile, as the public prison page shows it.
let profile = { title: "", photo: "", address: "", phone: "" };

async function loadProfile(user) {
  const page = user.prison_ids.length ? await api.get(`/prisons/${user.prison_ids[0]}`) : { supervisors: [] };
  const listed = (page.supervisors || []).find((s) => s.id === user.id);
  profile = {
    title: (listed && listed.title) || "",
    photo: (listed && listed.photo) || "",
    address: (listed && listed.address) || "",
    phone: (listed && listed.phone) || "",
  };
  const form = $("#user-profile");
  for (const name of ["title", "address", "phone"]) form.elements[name].value = profile[name];
  showPhoto(profile.photo);
}

function showPhoto(url) {
  const img = $("#profile-photo");
  if (url) img.setAttribute("src", url);
  else img.removeAttribute("src");
  show(img, Boolean(url));
}

$("#profile-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file || !editing) return;
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch(`/api/v1/admin/supervisors/${editing.id}/photo`, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: form,
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw Object.assign(new Error("upload"), (data && data.error) || { code: "unknown" });
    profile.photo = data.photo;
    showPhoto(data.photo);
    toast(t("admin.profile.uploaded", { name: editing.name }));
  } catch (err) {
    toastError(err);
  } finally {
    event.target.value = "";
  }
});

$("#user-profile").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  const values = formValues(event.target);
  try {
    await api.put(`/supervisors/${editing.id}/profile`, { ...profile, title: values.title, address: values.address, phone: values.phone });
    toast(t("admin.profile.saved", { name: editing.name }));
  } catch (err) {
    toastError(err);
  }
});

async function onUser(path, body, doneKey) {
  if (!editing) return;
  try {
    await api.post(`/admin/users/${editing.id}/${path}`, body);
    toast(t(doneKey, { name: editing.name }));
    await loadStaff();
  } catch (err) {
    toastError(err);
  }
}

$("#user-disable").addEventListener("click", () => onUser("disable", {}, "admin.staff.disabledDone"));
$("#user-enable").addEventListener("click", () => onUser("enable", {}, "admin.staff.enabledDone"));
$("#user-password").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await onUser("password", { new_password: formValues(form).new_password }, "admin.staff.passwordDone");
  form.reset();
});
$("#user-prisons").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  try {
    await api.patch(`/admin/users/${editing.id}`, { prison_ids: chosenPrisons(event.target) });
    toast(t("admin.staff.prisonsDone", { name: editing.name }));
    await loadStaff();
  } catch (err) {
    toastError(err);
  }
});
$("#staff-role").addEventListener("change", () => loadStaff().catch(toastError));

$("#staff-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const values = formValues(form);
  const error = $("#staff-error");
  error.textContent = "";
  try {
    const made = await api.post("/admin/users", {
      role: values.role,
      login: values.login,
      name: values.name,
      password: values.password,
      prison_ids: chosenPrisons(form),
    });
    form.reset();
    renderChoices($("#staff-prisons"), "prison_ids", []);
    toast(t("admin.staff.created", { name: made.name }));
    await loadStaff();
  } catch (err) {
    error.textContent = errorText(err);
  }
});

// -- inmates ------------------------------------------------------------------------------------

const currentPrison = () => Number($("#inmate-prison").value);

async function loadInmates() {
  const prison = currentPrison();
  if (!prison) return;
  const status = $("#inmate-status").value;
  const { inmates } = await api.get("/admin/inmates", { prison, status, limit: 500 });
  const table = $("#inmates-table");
  show($("#inmates-empty"), inmates.length === 0);
  replace(table, 
    head("admin.inmates.number", "admin.inmates.name", "admin.inmates.status", "admin.actions"),
    h("tbody", {}, inmates.map(inmateRow)),
  );
}

function inmateRow(inmate) {
  const cell = h("td", { class: "actions-cell" });
  if (inmate.status === "held") {
    const others = prisons.filter((p) => p.id !== inmate.prison_id);
    const target = h(
      "select",
      { class: "transfer-to", aria: { label: t("admin.inmates.transferTo") } },
      others.map((p) => h("option", { value: p.id }, p.name)),
    );
    const move = h("button", { type: "button", class: "transfer", disabled: others.length === 0 }, t("admin.inmates.transfer"));
    move.addEventListener("click", async () => {
      move.disabled = true;
      try {
        const done = await api.post(`/admin/inmates/${inmate.id}/transfer`, { prison_id: Number(target.value) });
        toast(t("admin.inmates.transferred", { name: inmate.name, prison: prisonName(done.inmate.prison_id), links: done.links }));
        await loadInmates();
      } catch (err) {
        toastError(err);
        move.disabled = false;
      }
    });
    const end = (what) =>
      confirmButton(`admin.inmates.${what}`, async () => {
        const done = await api.post(`/admin/inmates/${inmate.id}/${what}`, {});
        toast(t("admin.inmates.ended", { name: inmate.name, n: done.notified }));
        await loadInmates();
      });
    cell.append(target, move, end("release"), end("archive"));
  }
  return h(
    "tr",
    { data: { inmate: inmate.id, number: inmate.number } },
    h("td", {}, inmate.number),
    h("td", {}, inmate.name),
    h("td", {}, t(`admin.status.${inmate.status}`)),
    cell,
  );
}

$("#inmate-prison").addEventListener("change", () => {
  resetImport();
  loadInmates().catch(toastError);
});
$("#inmate-status").addEventListener("change", () => loadInmates().catch(toastError));
$("#inmate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const made = await api.post("/admin/inmates", { prison_id: currentPrison(), ...formValues(form) });
    form.reset();
    toast(t("admin.inmates.added", { name: made.name }));
    await loadInmates();
  } catch (err) {
    toastError(err);
  }
});

// The import: a dry run first; "apply" is offered only for the file that was checked, as it
// was checked (choosing another file or prison takes it away again).
let checked = null;

function resetImport() {
  checked = null;
  $("#import-apply").disabled = true;
  clear($("#import-report"));
  $("#import-summary").textContent = "";
}

async function sendImport(bytes, dryRun) {
  const prison = currentPrison();
  const response = await fetch(`/api/v1/admin/prisons/${prison}/inmates/import?dry_run=${dryRun}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "text/csv", Accept: "application/json" },
    body: bytes,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = (data && data.error) || { code: "unknown" };
    throw Object.assign(new Error(detail.message || detail.code), detail);
  }
  return data;
}

function showReport(report) {
  const key = report.applied ? "admin.import.appliedSummary" : "admin.import.drySummary";
  $("#import-summary").textContent = t(key, report);
  $("#import-summary").dataset.applied = String(report.applied);
  replace($("#import-report"), 
    head("admin.import.line", "admin.inmates.number", "admin.inmates.name", "admin.import.outcome"),
    h(
      "tbody",
      {},
      report.lines.map((line) =>
        h(
          "tr",
          { class: `outcome-${line.outcome}`, data: { line: line.line, outcome: line.outcome } },
          h("td", {}, String(line.line)),
          h("td", {}, line.number),
          h("td", {}, line.before ? `${line.before} → ${line.name}` : line.name),
          h("td", {}, line.error ? `${t(`admin.import.${line.outcome}`)}: ${t(`admin.import.error.${line.error}`)}` : t(`admin.import.${line.outcome}`)),
        ),
      ),
    ),
  );
}

$("#import-file").addEventListener("change", resetImport);
$("#import-check").addEventListener("click", async () => {
  const file = $("#import-file").files[0];
  if (!file) {
    toast(t("admin.import.noFile"), { bad: true });
    return;
  }
  try {
    const bytes = await file.arrayBuffer();
    const report = await sendImport(bytes, true);
    showReport(report);
    checked = { bytes, prison: currentPrison() };
    $("#import-apply").disabled = report.added + report.updated === 0;
  } catch (err) {
    resetImport();
    toastError(err);
  }
});
$("#import-apply").addEventListener("click", async () => {
  if (!checked || checked.prison !== currentPrison()) return;
  $("#import-apply").disabled = true;
  try {
    const report = await sendImport(checked.bytes, false);
    showReport(report);
    checked = null;
    await loadInmates();
  } catch (err) {
    toastError(err);
    $("#import-apply").disabled = false;
  }
});

// -- figures ------------------------------------------------------------------------------------

async function loadFigures() {
  const { days } = await api.get("/stats/bureau");
  const seconds = (s) => (s === null || s === undefined ? "—" : formatDuration(Math.round(s)));
  replace($("#figures-table"), 
    head("admin.figures.day", "admin.figures.messages", "admin.figures.cycles", "admin.figures.median", "admin.figures.relatives", "admin.figures.complaints", "desk.figures.comments"),
    h(
      "tbody",
      {},
      days.map((d) =>
        h("tr", { data: { day: d.day } }, h("td", {}, d.day), h("td", {}, String(d.messages)), h("td", {}, `${d.answered} / ${d.cycles}`), h("td", {}, seconds(d.median_s)), h("td", {}, String(d.relatives)), h("td", {}, `${d.complaints_filed} / ${d.complaints_open}`), h("td", {}, `${d.comments ?? 0} / ${d.comments_approved ?? 0}`)),
      ),
    ),
  );
}

// -- keyword lists ------------------------------------------------------------------------------
// One box per category (categories are data: add, rename the label, remove); one keyword a
// line; saved as a whole (PUT /admin/keywords), which every server process then flags by.

function keywordBox(list = { category: "", label: "", words: [] }) {
  const fresh = !list.category;
  const code = h("input", { name: "category", required: true, maxlength: 40, pattern: "[a-z][a-z0-9\\-]{0,39}", value: list.category, readonly: !fresh, autocomplete: "off" });
  const remove = h("button", { type: "button", class: "danger", data: { action: "remove" } }, t("admin.keywords.remove"));
  const box = h(
    "fieldset",
    { class: "box keyword-list", data: { category: list.category } },
    h("legend", {}, list.category ? list.label || categoryLabel(list.category) : t("admin.keywords.new")),
    h("label", {}, h("span", {}, t("admin.keywords.category")), code),
    h("label", {}, h("span", {}, t("admin.keywords.label")), h("input", { name: "label", maxlength: 50, value: list.label })),
    h("label", {}, h("span", {}, t("admin.keywords.words")), h("textarea", { name: "words", rows: 8, text: list.words.join("\n") })),
    remove,
  );
  remove.addEventListener("click", () => box.remove());
  return box;
}

function keywordForm() {
  return [...$("#keyword-lists").querySelectorAll(".keyword-list")].map((box) => ({
    category: box.querySelector('[name="category"]').value.trim(),
    label: box.querySelector('[name="label"]').value.trim(),
    words: box.querySelector('[name="words"]').value.split("\n").map((w) => w.trim()).filter(Boolean),
  }));
}

function showKeywords(stored) {
  replace($("#keyword-lists"), stored.lists.map((list) => keywordBox(list)));
  $("#keywords-version").textContent = t("admin.keywords.version", { n: stored.version });
}

async function loadKeywords() {
  showKeywords(await api.get("/admin/keywords"));
}

$("#keyword-add").addEventListener("click", () => {
  const box = keywordBox();
  $("#keyword-lists").append(box);
  box.querySelector('[name="category"]').focus();
});
$("#keywords-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#keywords-error").textContent = "";
  try {
    const stored = await api.put("/admin/keywords", { lists: keywordForm() });
    showKeywords(stored);
    toast(t("admin.keywords.saved"));
  } catch (err) {
    $("#keywords-error").textContent = errorText(err);
  }
});

// -- desk settings and comments (issue 16) -----------------------------------------------------

const adminComments = new CommentQueue({ list: $("#admin-comments"), empty: $("#admin-comments-empty") });
const deskForm = $("#desk-settings-form");

async function showDeskSettings() {
  const prison = Number(deskForm.elements.prison.value);
  if (!prison) return;
  const got = await api.get(`/prisons/${prison}/desk-settings`);
  deskForm.elements.auto_assign.value = got.auto_assign;
  deskForm.elements.assign_cap.value = String(got.assign_cap);
  deskForm.elements.away_reply.checked = got.away_reply;
  deskForm.elements.hours_zh.value = got.desk_hours["zh-CN"] || "";
  deskForm.elements.hours_en.value = got.desk_hours.en || "";
}

async function loadDesk() {
  const chosen = deskForm.elements.prison.value;
  replace(deskForm.elements.prison, prisons.map((p) => h("option", { value: p.id }, p.name)));
  if (chosen) deskForm.elements.prison.value = chosen;
  await Promise.all([showDeskSettings(), adminComments.load()]);
}

deskForm.elements.prison.addEventListener("change", () => showDeskSettings().catch(toastError));
deskForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = deskForm.elements;
  try {
    await api.put(`/prisons/${Number(f.prison.value)}/desk-settings`, {
      auto_assign: f.auto_assign.value,
      assign_cap: Number(f.assign_cap.value),
      away_reply: f.away_reply.checked,
      desk_hours: { "zh-CN": f.hours_zh.value, en: f.hours_en.value },
    });
    toast(t("desk.settings.saved"));
  } catch (err) {
    toastError(err);
  }
});

tabs($(".admin-tabs"), (id) => {
  const load = {
    "tab-staff": loadStaff,
    "tab-prisons": loadPrisons,
    "tab-figures": loadFigures,
    "tab-inmates": loadInmates,
    "tab-desk": loadDesk,
    "tab-complaints": () => loadEscalated(prisonName), // issue 15: escalated complaints
    "tab-keywords": loadKeywords,
  }[id];
  if (load) load().catch(toastError);
});
onLocaleChange(() => {
  loadPrisons().then(loadInmates).catch(toastError);
});

await loadPrisons();
await loadInmates();
document.body.dataset.ready = "1";
