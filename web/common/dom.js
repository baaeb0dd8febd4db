// Tiny DOM helpers. Text from the network is ALWAYS put in with textContent (never innerHTML):
// visitors and staff type free text, and it must never become markup.

/**
 * el("button", {class: "x", type: "button", dataset: {testid: "y"}, onclick: fn}, "text", child)
 * Attribute values of `true` set a boolean attribute, `false`/null/undefined leave it out.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** querySelector that throws when the page is missing an element the script relies on. */
export function $(selector, root = document) {
  const node = root.querySelector(selector);
  if (!node) throw new Error(`missing element ${selector}`);
  return node;
}

/** A random id for `ref` fields (at most 64 characters, as the protocol allows). */
export function newRef() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/** Show exactly one of several elements (the others get `hidden`). */
export function showOnly(visible, all) {
  for (const node of all) node.hidden = node !== visible;
}
