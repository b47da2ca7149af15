// Entry of dist/webview/panel.js: styles first, then the app.
import '../components/elements';
import baseCss from '../components/base.css';
import logCss from '../components/log.css';
import panelCss from './panel.css';
import { ansiCss } from '../components/ansiCss';
import { uplotCss } from '../components/statsChart';
import { adoptStyles } from '../components/styles';
import { PanelApp } from './panelApp';

adoptStyles(baseCss, uplotCss, logCss, ansiCss(), panelCss);
const root = document.getElementById('app') ?? document.body.appendChild(document.createElement('main'));
root.id = 'app';
new PanelApp(root);
