// The supervisor monitor (/monitor): a supervisor signs in and oversees its prisons, read-only:
// the live overview and any conversation watched live (no composer exists on this page),
// response-time figures (keyword flags counted too), the complaints inbox and its workflow,
// the keyword review queue, the audit trail.

import { $, h, replace, show } from "/static/lib/dom.js";
import { prisonNames, signIn, startI18n, startStaff, tabs } from "/static/console/staff.js";
import { Overview } from "/static/monitor/overview.js";
import { Figures } from "/static/monitor/figures.js";
import { Complaints } from "/static/monitor/complaints.js";
import { Audit } from "/static/monitor/audit.js";
import { FlagQueue } from "/static/console/flags.js";

startI18n("monitor.title");
const me = await signIn(["supervisor"]);
show($("#board"), true);
const socket = startStaff(me);
const prisons = await prisonNames();
const mine = me.user.prison_ids;
let prison = mine[0];

const picker = $("#prison");
const name = (id) => (prisons[id] ? prisons[id].name : `#${id}`);
if (mine.length > 1) {
  replace(picker, mine.map((id) => h("option", { value: id }, name(id)))); // not the native append
  show($("#prison-pick"), true);
} else {
  $("#prison-name").textContent = name(prison);
}

const overview = new Overview({ socket, prison });
const figures = new Figures({ prison });
const complaints = new Complaints({
  socket,
  prisons,
  meId: me.user.id,
  onOpenConversation: (conv) => {
    board.select("tab-overview");
    overview.watch(conv);
  },
  onCount: (n) => {
    $("#count-complaints").textContent = n ? String(n) : "";
  },
});
const audit = new Audit({ prison });
const flags = new FlagQueue({
  list: $("#flags"),
  empty: $("#flags-empty"),
  counter: $("#count-flags"),
  state: $("#flags-state"),
  prison: () => prison,
  onOpen: (conv) => {
    board.select("tab-overview");
    overview.watch(conv);
  },
});

const loaded = new Set(["tab-overview"]);
const board = tabs($(".board-tabs"), (id) => {
  if (id === "tab-figures") figures.load();
  if (id === "tab-audit" && !loaded.has(id)) audit.search();
  if (id === "tab-complaints") complaints.load();
  if (id === "tab-flags") flags.load();
  loaded.add(id);
});

picker.addEventListener("change", () => {
  prison = Number(picker.value);
  overview.setPrison(prison);
  figures.setPrison(prison);
  audit.setPrison(prison);
  if (loaded.has("tab-figures")) figures.load();
  flags.load();
});

socket.on("welcome", () => {
  if (socket.reconnects > 0) overview.refresh(); // what changed while we were away
});

socket.start(); // first: the staff topic's events then land on top of what we load
await overview.refresh();
if (overview.data) figures.setPrison(prison, overview.data.response_target_s);
complaints.load();
flags.load();
document.body.dataset.ready = "1";
export { board };
