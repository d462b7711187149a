// The review page's 3-D view: the item's hand and object meshes (GET api/cycles/N/items/P/geometry), object
// parts coloured by affordance label, with toggles for the hand, the contact region and the predicted class's
// part, and a snap to where the hand touches. Mouse: drag to rotate, wheel to zoom (OrbitControls). Keys: J/L
// turn, I/K tilt, +/- zoom, 0 reset, H hand, C contact, P predicted part, T touch view. The next item's geometry
// is fetched ahead. Without geometry (mesh missing or too large) or without WebGL the note says so and the two
// static views below stand. State for tests and people sits in #view3d's data attributes.

import * as THREE from "./vendor/three.module.js";
import { OrbitControls } from "./vendor/OrbitControls.js";

const PART_COLOURS = {  // label id -> colour; 0 (no affordance) is the body grey
  0: 0xb8bec9, 1: 0x2f5fd0, 3: 0xe67e22, 4: 0x16a085, 5: 0x8e44ad, 6: 0xd35400, 7: 0x27ae60, 8: 0xc0392b, 9: 0x8d5524,
};
const CONTACT_COLOUR = 0xe5003a;
const PART_HIGHLIGHT = 0xf1c40f;
const STEP = Math.PI / 12;  // 15 degrees a key press

const $ = (id) => document.getElementById(id);
const box = $("view3d");
const note = (text) => { $("view3d-note").textContent = text; };
const cache = new Map();  // "cycle/position" -> Promise of geometry (or of null with a reason)
const state = { hand: true, contact: false, part: false, current: null, key: null };
let three = null;  // renderer, scene, camera, controls, meshes once WebGL works

function webgl() {
  if (three) return three;
  const canvasBox = $("view3d-canvas");
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  } catch (error) {
    return null;
  }
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  canvasBox.append(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xeef0f4);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x667085, 2.2));
  const light = new THREE.DirectionalLight(0xffffff, 1.4);
  light.position.set(1, 2, 1.5);
  scene.add(light);
  const camera = new THREE.PerspectiveCamera(40, 1, 0.001, 10);
  camera.up.set(0, 0, 1);  // the datasets' object frames stand on z
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.addEventListener("change", draw);
  three = { renderer, scene, camera, controls, group: null, hand: null, objectMesh: null, home: null };
  new ResizeObserver(resize).observe(canvasBox);
  resize();
  return three;
}

function resize() {
  if (!three) return;
  const canvasBox = $("view3d-canvas");
  const width = canvasBox.clientWidth || 640, height = canvasBox.clientHeight || 400;
  three.renderer.setSize(width, height, false);
  three.camera.aspect = width / height;
  three.camera.updateProjectionMatrix();
  draw();
}

function draw() {
  if (!three) return;
  three.renderer.render(three.scene, three.camera);
  box.dataset.azimuth = three.controls.getAzimuthalAngle().toFixed(4);
  box.dataset.polar = three.controls.getPolarAngle().toFixed(4);
  box.dataset.distance = three.camera.position.distanceTo(three.controls.target).toFixed(4);
}

function fetchGeometry(detail, position) {
  const key = detail.cycle + "/" + position;
  if (!cache.has(key)) {
    const url = "api/cycles/" + detail.cycle + "/items/" + position + "/geometry";
    cache.set(key, fetch(url, { headers: detail.headers }).then(async (response) => {
      if (response.ok) return { geometry: await response.json() };
      let reason = "HTTP " + response.status;
      try { reason = (await response.json()).detail || reason; } catch (error) { /* not JSON */ }
      return { reason: String(reason) };
    }).catch((error) => ({ reason: String(error.message || error) })));
  }
  return cache.get(key);
}

// Keep only this item, its neighbours and the one ahead: a geometry can be 4 MiB, and a queue holds 100 items.
function forgetOthers(detail) {
  const keep = new Set([-1, 0, 1].map((d) => detail.cycle + "/" + (detail.position + d)));
  for (const key of cache.keys()) if (!keep.has(key)) cache.delete(key);
}

async function show(detail) {
  const key = detail.cycle + "/" + detail.position;
  state.key = key;
  box.dataset.loaded = "false";
  note("Loading the 3-D view…");
  const result = await fetchGeometry(detail, detail.position);
  if (detail.position + 1 < detail.total) fetchGeometry(detail, detail.position + 1);  // ahead of the reviewer
  forgetOthers(detail);
  if (state.key !== key) return;  // moved on meanwhile
  if (!result.geometry) {
    $("view3d-canvas").hidden = true;
    $("view3d-legend").replaceChildren();  // the previous item's parts are not this one's
    note("No 3-D view for this item: " + result.reason + ". The two views below show it.");
    return;
  }
  const gl = webgl();
  if (!gl) {
    $("view3d-canvas").hidden = true;
    $("view3d-legend").replaceChildren();
    note("This browser cannot draw WebGL; the two views below show the item.");
    return;
  }
  $("view3d-canvas").hidden = false;
  build(gl, result.geometry);
  state.current = result.geometry;
  box.dataset.loaded = "true";
  box.dataset.position = String(detail.position);
  note("Drag to rotate, wheel to zoom. Parts are coloured by affordance label.");
}

function meshOf(part, colours) {
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute("position", new THREE.Float32BufferAttribute(part.vertices, 3));
  geometry.setIndex(part.faces);
  if (colours) geometry.setAttribute("color", new THREE.Float32BufferAttribute(colours, 3));
  geometry.computeVertexNormals();
  return geometry;
}

function objectColours(g) {
  const count = g.object.vertices.length / 3;
  const colours = new Float32Array(count * 3);
  const colour = new THREE.Color();
  const contact = state.contact ? new Set(g.contact) : null;
  const part = state.part ? new Set(g.predicted_part) : null;
  for (let i = 0; i < count; i++) {
    const label = g.object.labels ? g.object.labels[i] : 0;
    let hex = PART_COLOURS[label] ?? PART_COLOURS[0];
    if (part && part.has(label)) hex = PART_HIGHLIGHT;
    if (contact && contact.has(i)) hex = CONTACT_COLOUR;
    colour.setHex(hex);
    colours.set([colour.r, colour.g, colour.b], i * 3);
  }
  return colours;
}

function build(gl, g) {
  if (gl.group) {
    gl.scene.remove(gl.group);
    gl.group.traverse((node) => { if (node.geometry) node.geometry.dispose(); if (node.material) node.material.dispose(); });
  }
  const group = new THREE.Group();
  const objectMesh = new THREE.Mesh(meshOf(g.object, objectColours(g)),
    new THREE.MeshLambertMaterial({ vertexColors: true, side: THREE.DoubleSide }));
  const hand = new THREE.Mesh(meshOf(g.hand, null), new THREE.MeshLambertMaterial({
    color: 0xe8b996, transparent: true, opacity: 0.75, side: THREE.DoubleSide, depthWrite: false }));
  hand.visible = state.hand;
  // The contact vertices also as dots drawn over everything, so the hand never hides where it touches.
  const dots = new THREE.BufferGeometry();
  dots.setAttribute("position", new THREE.Float32BufferAttribute(
    g.contact.flatMap((i) => g.object.vertices.slice(3 * i, 3 * i + 3)), 3));
  const contact = new THREE.Points(dots, new THREE.PointsMaterial({
    color: CONTACT_COLOUR, size: 7, sizeAttenuation: false, depthTest: false }));
  contact.renderOrder = 1;
  contact.visible = state.contact;
  group.add(objectMesh, hand, contact);
  gl.scene.add(group);
  Object.assign(gl, { group, objectMesh, hand, contact });
  const sphere = new THREE.Box3().setFromObject(group).getBoundingSphere(new THREE.Sphere());
  gl.home = { target: sphere.center.clone(), distance: Math.max(sphere.radius, 0.02) * 2.8 };
  legend(g);
  reset();
}

function legend(g) {
  const list = $("view3d-legend");
  const entry = (hex, text) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = "#" + new THREE.Color(hex).getHexString();
    item.append(swatch, text);
    return item;
  };
  const present = new Set(g.object.labels || [0]);
  list.replaceChildren(
    ...Object.entries(g.parts).filter(([id]) => present.has(Number(id))).map(([id, name]) =>
      entry(PART_COLOURS[id] ?? PART_COLOURS[0], name === "no_affordance" ? "body (no affordance)" : name)),
    entry(CONTACT_COLOUR, "contact (within 5 mm of the hand)"),
    entry(PART_HIGHLIGHT, "predicted part (" + g.predicted + ")"));
}

function place(target, direction, distance) {
  const gl = three;
  gl.controls.target.copy(target);
  gl.camera.position.copy(target).addScaledVector(direction.normalize(), distance);
  gl.camera.near = distance / 100;
  gl.camera.far = distance * 100;
  gl.camera.updateProjectionMatrix();
  gl.controls.update();
  draw();
}

function reset() {
  if (!three || !three.home) return;
  place(three.home.target, new THREE.Vector3(0.8, -1, 0.6), three.home.distance);
}

function touchView() {
  // Look at the contact centre from the hand's side: from the object's centre through the contact point.
  if (!three || !state.current) return;
  const touch = new THREE.Vector3(...state.current.touch);
  const out = touch.clone().sub(three.home.target);
  if (out.lengthSq() < 1e-10) out.set(0, 0, 1);
  place(touch, out, three.home.distance * 0.6);
}

function rotate(azimuth, polar) {
  // About the camera's up axis (z: the objects stand on it) to turn; about the horizontal axis to tilt, never
  // over the pole. OrbitControls reads the new position and keeps its own angles in step.
  if (!three) return;
  const gl = three;
  const up = gl.camera.up;
  const offset = gl.camera.position.clone().sub(gl.controls.target);
  if (azimuth) offset.applyAxisAngle(up, azimuth);
  if (polar) {
    const axis = new THREE.Vector3().crossVectors(up, offset).normalize();
    const tilted = offset.clone().applyAxisAngle(axis, polar);
    const fromUp = tilted.angleTo(up);
    if (fromUp > 0.01 && fromUp < Math.PI - 0.01) offset.copy(tilted);
  }
  gl.camera.position.copy(gl.controls.target).add(offset);
  gl.controls.update();
  draw();
}

function zoom(factor) {
  if (!three) return;
  const gl = three;
  const offset = gl.camera.position.clone().sub(gl.controls.target).multiplyScalar(factor);
  gl.camera.position.copy(gl.controls.target).add(offset);
  gl.controls.update();
  draw();
}

function toggle(name) {
  state[name] = !state[name];
  $("view3d-" + name).setAttribute("aria-pressed", String(state[name]));
  box.dataset[name] = String(state[name]);
  if (!three || !state.current) return;
  if (name === "hand") three.hand.visible = state.hand;
  if (name === "contact") three.contact.visible = state.contact;
  if (name !== "hand") three.objectMesh.geometry.setAttribute("color", new THREE.Float32BufferAttribute(objectColours(state.current), 3));
  draw();
}

document.addEventListener("review:item", (event) => { show(event.detail); });
$("view3d-hand").addEventListener("click", () => toggle("hand"));
$("view3d-contact").addEventListener("click", () => toggle("contact"));
$("view3d-part").addEventListener("click", () => toggle("part"));
$("view3d-touch").addEventListener("click", touchView);
$("view3d-reset").addEventListener("click", reset);
for (const name of ["hand", "contact", "part"]) box.dataset[name] = String(state[name]);

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const actions = {
    j: () => rotate(-STEP, 0), l: () => rotate(STEP, 0), i: () => rotate(0, -STEP), k: () => rotate(0, STEP),
    "+": () => zoom(0.8), "=": () => zoom(0.8), "-": () => zoom(1.25), 0: reset,
    h: () => toggle("hand"), c: () => toggle("contact"), p: () => toggle("part"), t: touchView,
  };
  if (actions[key]) { actions[key](); event.preventDefault(); }
});
