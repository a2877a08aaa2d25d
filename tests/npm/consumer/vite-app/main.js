// A Vite app importing the package by name, as its users would.
import * as pkg from "decoding-playground";
import { setup } from "../app.js";

setup(pkg);
