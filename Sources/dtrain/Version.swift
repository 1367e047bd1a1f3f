/// dtrain's version, also checked across ranks at start.
let dtrainVersion = "0.1.0"
