// Attachments on every page (issue 18): upload a file, and show the files a message or a link
// request carries.
//
//   import { uploadFile, attachmentList, ACCEPT } from "/static/lib/attachments.js";
//   const file = await uploadFile(input.files[0]);   // POST /api/v1/attachments -> {id, type, ...}
//   bubble.append(attachmentList(message.attachments)); // thumbnails and file links, or null
//
// A photo shows as its thumbnail, a link that opens the full image in a new tab; a PDF as its
// name and size, a link that downloads it (the server serves PDFs only as downloads). Names
// are text (dom.js); URLs are made from the file's id only, never from anything it says.

import { h } from "/static/lib/dom.js";
import { API_ROOT, ApiError } from "/static/lib/api.js";
import { t } from "/static/lib/i18n.js";

export const ACCEPT = "image/jpeg,image/png,image/webp,application/pdf";

export function fileUrl(file) {
  return `${API_ROOT}/attachments/${Number(file.id)}`;
}

export function formatSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** Upload one File; the server's description of what it stored. Throws an ApiError. */
export async function uploadFile(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try {
    response = await fetch(`${API_ROOT}/attachments`, {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  } catch {
    throw new ApiError(0, "network", "the server could not be reached");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok && data) return data;
  const detail = (data && data.error) || {};
  throw new ApiError(response.status, detail.code || (response.status === 413 ? "too_large" : "internal"), detail.message || "", detail.field || null);
}

/** One file: a thumbnail opening the image, or a PDF's name downloading it. */
export function attachmentItem(file) {
  const url = fileUrl(file);
  const isImage = String(file.type || "").startsWith("image/");
  if (isImage && file.thumbnail) {
    return h(
      "li",
      { class: "attachment image", data: { attachment: file.id } },
      h(
        "a",
        { href: url, target: "_blank", rel: "noopener", class: "thumb", title: t("attach.open", { name: file.name }) },
        h("img", { src: `${url}/thumbnail`, alt: t("attach.photo", { name: file.name }), loading: "lazy", decoding: "async" }),
      ),
    );
  }
  return h(
    "li",
    { class: "attachment file", data: { attachment: file.id } },
    h(
      "a",
      { href: url, download: file.name, class: "file-link", title: t("attach.download", { name: file.name }) },
      h("span", { class: "file-icon", aria: { hidden: "true" } }, "PDF"),
      h("span", { class: "file-name" }, file.name),
      h("span", { class: "file-size muted" }, formatSize(file.size || 0)),
    ),
  );
}

/** The files a message or request carries, as a list; null when there are none. */
export function attachmentList(files) {
  if (!Array.isArray(files) || !files.length) return null;
  return h("ul", { class: "attachments", aria: { label: t("attach.files") } }, files.map(attachmentItem));
}

/** A file picker and the chosen files (uploaded at once), for a composer or a form:
 * `picker.ids()` the uploaded ids, `picker.files()` their descriptions, `picker.reset()`.
 * `onError(err)` is told of a refused upload; at most `max` files. */
export function filePicker({ max = 4, onError = () => {}, id = null } = {}) {
  const chosen = [];
  const input = h("input", { type: "file", accept: ACCEPT, class: "sr-only file-input", id: id || `file-${Math.random().toString(36).slice(2, 9)}`, multiple: true });
  const button = h("label", { for: input.id, class: "button attach-button", title: t("attach.add") }, h("img", { src: "/static/icons/attach.svg", alt: "", width: 22, height: 22, aria: { hidden: "true" } }), h("span", { class: "sr-only" }, t("attach.add")));
  const list = h("ul", { class: "attachments chosen", hidden: true });
  let busy = 0;

  function render() {
    list.replaceChildren(
      ...chosen.map((file) => {
        const item = attachmentItem(file);
        item.append(
          h("button", { type: "button", class: "remove", aria: { label: t("attach.remove", { name: file.name }) }, on: { click: () => remove(file.id) } }, "×"),
        );
        return item;
      }),
    );
    list.hidden = chosen.length === 0;
  }

  function remove(fileId) {
    const at = chosen.findIndex((f) => f.id === fileId);
    if (at >= 0) chosen.splice(at, 1);
    render();
  }

  input.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    for (const file of files) {
      if (chosen.length >= max) {
        onError({ code: "too_many_attachments" });
        break;
      }
      busy += 1;
      button.classList.add("busy");
      try {
        chosen.push(await uploadFile(file));
        render();
      } catch (err) {
        onError(err);
      } finally {
        busy -= 1;
        if (!busy) button.classList.remove("busy");
      }
    }
    input.dispatchEvent(new CustomEvent("files-changed", { bubbles: true }));
  });

  return {
    input,
    button,
    list,
    ids: () => chosen.map((f) => f.id),
    files: () => chosen.map((f) => ({ ...f, thumbnail: Boolean(f.thumbnail) })),
    busy: () => busy > 0,
    reset: () => {
      chosen.length = 0;
      render();
    },
  };
}
