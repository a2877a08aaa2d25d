// A Vite app importing the package by name, as its users would; its worker is model-worker.js.
import * as pkg from "decoding-playground";
import { setup } from "../app.js";

setup(pkg, () => new Worker(new URL("./model-worker.js", import.meta.url), { type: "module" }));
