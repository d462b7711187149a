#!/bin/sh
# Vendor the review page's JavaScript from npm, repeatably: the versions are pinned in package.json and
# package-lock.json (npm ci installs exactly those), and the files the page loads are copied here. Run it from
# anywhere after changing a version; commit the copied files with the lock file. CI never runs npm.
set -eu
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
cp node_modules/three/build/three.module.js node_modules/three/build/three.core.js .
cp node_modules/three/LICENSE LICENSE.three
# OrbitControls imports the bare name 'three', which needs an import map; the page's Content-Security-Policy
# allows no inline script, so the import is pointed at the copied module instead.
sed "s#from 'three';#from './three.module.js';#" node_modules/three/examples/jsm/controls/OrbitControls.js \
    > OrbitControls.js
grep -q "from './three.module.js';" OrbitControls.js
rm -rf node_modules
echo "vendored three $(node -p "require('./package-lock.json').packages['node_modules/three'].version")"
