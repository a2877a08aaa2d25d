// The app's engine worker, as the package's README has users write it.
import { serveModelWorker } from "decoding-playground";

serveModelWorker();
