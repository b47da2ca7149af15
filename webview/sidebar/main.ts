// Entry of dist/webview/sidebar.js: styles first, then the app.
import '../components/elements';
import baseCss from '../components/base.css';
import sidebarCss from './sidebar.css';
import { adoptStyles } from '../components/styles';
import { SidebarApp } from './sidebarApp';

adoptStyles(baseCss, sidebarCss);
const root = document.getElementById('app') ?? document.body.appendChild(document.createElement('main'));
root.id = 'app';
new SidebarApp(root);
